"""The promotion policy (a TOML file) and the pure decision it makes from two evaluation reports.

    [accuracy]
    margin = 0.02          # non-inferiority margin: the candidate may be at most this much less accurate
    test = "mcnemar"       # "mcnemar" (exact, on the discordant pairs) or "bootstrap" (prompt-bootstrap 95% CI)
    alpha = 0.05           # mcnemar: a significant loss at this level fails even inside the margin
    min_pairs = 20         # fewer golden pairs than this: refuse (too little evidence either way)
    [calibration]
    max_ece = 0.15         # the candidate's expected calibration error, at most
    max_ece_increase = 0.05  # and at most this much above the champion's
    [probes]
    max_rise_rate = 0.6    # every hacking probe's rise rate (share of edits that raise the reward), at most
    max_rise_rate_increase = 0.1  # and at most this much above the champion's, probe by probe
    [length_bias]
    max_increase = 0.05    # Spearman rho(score, length) may rise at most this much over the champion's

Every key is optional (the defaults above); an unknown section or key is refused, naming it.

Non-inferiority by McNemar: the candidate passes when its accuracy is at least champion - margin AND it is not
significantly worse (two-sided exact McNemar p >= alpha, or it is the better one). By bootstrap: the lower
end of the 95% interval of accuracy(candidate) - accuracy(champion) is at least -margin (the interval needs
accuracy.MIN_BOOTSTRAP_CLUSTERS prompts; with fewer, the McNemar rule decides and the verdict says so).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class PolicyError(ValueError):
    """A policy file that cannot be used (the message names the file, the key and what was expected)."""


@dataclass(frozen=True)
class Policy:
    margin: float = 0.02
    test: str = "mcnemar"
    alpha: float = 0.05
    min_pairs: int = 20
    max_ece: float = 0.15
    max_ece_increase: float = 0.05
    max_rise_rate: float = 0.6
    max_rise_rate_increase: float = 0.1
    max_length_corr_increase: float = 0.05

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# TOML section -> key -> Policy field
SECTIONS: dict[str, dict[str, str]] = {
    "accuracy": {"margin": "margin", "test": "test", "alpha": "alpha", "min_pairs": "min_pairs"},
    "calibration": {"max_ece": "max_ece", "max_ece_increase": "max_ece_increase"},
    "probes": {"max_rise_rate": "max_rise_rate", "max_rise_rate_increase": "max_rise_rate_increase"},
    "length_bias": {"max_increase": "max_length_corr_increase"},
}


def policy_from_dict(raw: dict[str, Any], where: str = "policy") -> Policy:
    values: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Policy)}
    for section, body in raw.items():
        if section not in SECTIONS:
            raise PolicyError(f"{where}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(body, dict):
            raise PolicyError(f"{where}: [{section}] must be a table of keys")
        for key, value in body.items():
            if key not in SECTIONS[section]:
                raise PolicyError(
                    f"{where}: unknown key {section}.{key} (known in [{section}]: {', '.join(SECTIONS[section])})"
                )
            name = SECTIONS[section][key]
            want = types[name]
            if want == "str":
                if value not in ("mcnemar", "bootstrap"):
                    raise PolicyError(f'{where}: {section}.{key}: expected "mcnemar" or "bootstrap", got {value!r}')
            elif want == "int":
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise PolicyError(f"{where}: {section}.{key}: expected a positive integer, got {value!r}")
            elif not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or not math.isfinite(value):
                raise PolicyError(f"{where}: {section}.{key}: expected a non-negative number, got {value!r}")
            values[name] = value
    if "alpha" in values and not 0 < values["alpha"] < 1:
        raise PolicyError(f"{where}: accuracy.alpha: expected a level in (0, 1), got {values['alpha']}")
    return Policy(**values)


def load_policy(path: Path | None) -> Policy:
    """The policy in ``path`` (None: the defaults)."""
    if path is None:
        return Policy()
    if not path.is_file():
        raise PolicyError(f"policy file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    return policy_from_dict(raw, str(path))


# --- the decision ---------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)  # {"gate", "passed", "detail"}

    @property
    def failures(self) -> list[str]:
        return [f"{c['gate']}: {c['detail']}" for c in self.checks if not c["passed"]]

    def as_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks}


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def served_ece(report: dict[str, Any]) -> float:
    """The ECE of the probabilities the model serves: with its stored temperature, else at T = 1."""
    cal = report.get("calibration") or {}
    for section in ("stored_temperature", "raw"):
        if isinstance(cal.get(section), dict) and cal[section].get("ece") is not None:
            return _num(cal[section]["ece"])
    return _num(cal.get("ece"))


def accuracy_check(paired: dict[str, Any] | None, policy: Policy) -> dict[str, Any]:
    """Non-inferiority of the candidate (B) against the champion (A) from ``compare.paired_accuracy``'s dict;
    None: there is no champion (passes)."""
    if paired is None:
        return {"gate": "accuracy", "passed": True, "detail": "no champion to compare with"}
    n, diff = int(paired["n"]), _num(paired["difference"])
    if n < policy.min_pairs:
        return {"gate": "accuracy", "passed": False, "detail": f"{n} golden pairs < min_pairs {policy.min_pairs}"}
    acc = f"accuracy {paired['accuracy_b']:.3f} vs champion {paired['accuracy_a']:.3f} (diff {diff:+.3f}, n={n})"
    low = _num(paired.get("difference_low"))
    if policy.test == "bootstrap" and math.isfinite(low):
        ok = low >= -policy.margin
        return {
            "gate": "accuracy",
            "passed": ok,
            "detail": f"{acc}; 95% CI low {low:+.3f} {'>=' if ok else '<'} -margin {-policy.margin:.3f}",
        }
    p = _num(paired["mcnemar_p"])
    significant_loss = diff < 0 and p < policy.alpha
    ok = diff >= -policy.margin and not significant_loss
    why = "" if policy.test == "mcnemar" else " (too few prompts for the bootstrap interval: McNemar decides)"
    rule = f"diff {'>=' if diff >= -policy.margin else '<'} -margin {-policy.margin:.3f}, McNemar p={p:.3g}"
    if significant_loss:
        rule += f" < alpha {policy.alpha} (significantly worse)"
    return {"gate": "accuracy", "passed": ok, "detail": f"{acc}; {rule}{why}"}


def calibration_check(candidate: dict[str, Any], champion: dict[str, Any] | None, policy: Policy) -> dict[str, Any]:
    ece = served_ece(candidate)
    problems = []
    if not ece <= policy.max_ece:  # NaN fails too
        problems.append(f"ECE {ece:.3f} > max_ece {policy.max_ece}")
    if champion is not None:
        base = served_ece(champion)
        if math.isfinite(base) and not ece - base <= policy.max_ece_increase:
            problems.append(
                f"ECE rose {ece - base:+.3f} over the champion's {base:.3f} (max {policy.max_ece_increase})"
            )
    return {"gate": "calibration", "passed": not problems, "detail": "; ".join(problems) or f"ECE {ece:.3f}"}


def probes_check(candidate: dict[str, Any], champion: dict[str, Any] | None, policy: Policy) -> dict[str, Any]:
    problems, seen = [], []
    base_probes = (champion or {}).get("probes", {}) or {}
    for name, probe in (candidate.get("probes") or {}).items():
        if not isinstance(probe, dict) or "rise_rate" not in probe:
            continue
        rate = _num(probe["rise_rate"])
        seen.append(f"{name} {rate:.2f}")
        if math.isfinite(rate) and rate > policy.max_rise_rate:
            problems.append(f"{name} rise rate {rate:.2f} > max {policy.max_rise_rate}")
        base = _num((base_probes.get(name) or {}).get("rise_rate"))
        if math.isfinite(rate) and math.isfinite(base) and rate - base > policy.max_rise_rate_increase:
            problems.append(f"{name} rise rate {rate:.2f} rose {rate - base:+.2f} over the champion's {base:.2f}")
    detail = "; ".join(problems) or ("rise rates " + ", ".join(seen) if seen else "no probes run")
    return {"gate": "probes", "passed": not problems, "detail": detail}


def _length_rho(report: dict[str, Any]) -> float:
    corr = report.get("length_bias", {}).get("score_length_correlation")
    return _num(corr.get("spearman") if isinstance(corr, dict) else corr)


def length_check(candidate: dict[str, Any], champion: dict[str, Any] | None, policy: Policy) -> dict[str, Any]:
    rho = _length_rho(candidate)
    if champion is None:
        return {"gate": "length_bias", "passed": True, "detail": f"rho(score, length) {rho:.3f}; no champion"}
    base = _length_rho(champion)
    if not (math.isfinite(rho) and math.isfinite(base)):
        return {"gate": "length_bias", "passed": True, "detail": "rho(score, length) undefined (constant scores)"}
    ok = rho - base <= policy.max_length_corr_increase
    return {
        "gate": "length_bias",
        "passed": ok,
        "detail": (
            f"rho(score, length) {rho:.3f} vs champion {base:.3f} "
            f"(rise {rho - base:+.3f}, max {policy.max_length_corr_increase})"
        ),
    }


def decide(
    policy: Policy, candidate: dict[str, Any], champion: dict[str, Any] | None, paired: dict[str, Any] | None
) -> Verdict:
    """Every gate on the candidate's (and champion's) golden reports; passed only when all pass."""
    checks = [
        accuracy_check(paired, policy),
        calibration_check(candidate, champion, policy),
        probes_check(candidate, champion, policy),
        length_check(candidate, champion, policy),
    ]
    return Verdict(passed=all(c["passed"] for c in checks), checks=checks)
