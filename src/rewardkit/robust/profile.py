"""Robust training profiles: which exploit kinds a run trains against, with what loss weight and batch share.

A profile is a TOML file (as the loop's ``loop.toml`` and the promotion policy are):

    [kinds.padding]
    weight = 1.0     # loss weight of each augmented pair of this kind (the training pairs weigh 1)
    share = 0.04     # the share of every epoch's (so, on average, of every batch's) pairs that are of this kind
    [kinds.appended_text]
    weight = 1.0
    share = 0.03
    texts = ["Hope this helps!"]   # appended_text only: its own suffixes instead of the bank
    [invariance]
    share = 0.05     # meaning-preserving rewrite pairs, used when --invariance-weight > 0

``rewardkit train --robust default`` reads the profile shipped in ``robust/profiles/default.toml``; any other
value is a path. Every mistake is one ``ProfileError`` line that names the key (``kinds.paddin``,
``kinds.padding.weight``) and what was expected.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.robust.transforms import TRANSFORMS

SHIPPED = Path(__file__).parent / "profiles"
DEFAULT_INVARIANCE_SHARE = 0.05  # invariance pairs without a profile (--invariance-weight alone)
_KIND_KEYS = ("weight", "share")


class ProfileError(ValueError):
    """A profile that cannot be used: one line naming the file, the key and what was expected."""


@dataclass(frozen=True)
class KindSpec:
    weight: float
    share: float
    texts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    kinds: dict[str, KindSpec] = field(default_factory=dict)
    invariance_share: float = DEFAULT_INVARIANCE_SHARE

    def total_share(self, invariance: bool) -> float:
        """The share of an epoch's pairs that augmentation adds (kinds, and rewrites when ``invariance``)."""
        return sum(k.share for k in self.kinds.values()) + (self.invariance_share if invariance else 0.0)


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def profile_path(spec: str) -> Path:
    """A shipped profile's name (``default``) or a file's path -> the file; a ProfileError when neither."""
    if spec in shipped_profiles():
        return SHIPPED / f"{spec}.toml"
    path = Path(spec)
    if not path.is_file():
        raise ProfileError(
            f"robust profile {spec!r}: no such file, nor a shipped profile (shipped: {', '.join(shipped_profiles())})"
        )
    return path


def load_profile(spec: str) -> Profile:
    """Read and validate a profile (a shipped name or a path)."""
    path = profile_path(spec)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"robust profile {path}: not valid TOML ({exc})") from None
    return parse_profile(raw, spec if path.parent == SHIPPED else str(path))


def parse_profile(raw: dict[str, Any], name: str) -> Profile:
    """A profile from its parsed TOML; ``name`` is what errors and the model card call it."""

    def fail(key: str, problem: str) -> ProfileError:
        return ProfileError(f"robust profile {name}: {key}: {problem}")

    unknown = sorted(set(raw) - {"kinds", "invariance"})
    if unknown:
        raise fail(unknown[0], "unknown key; expected [kinds.<kind>] tables and an optional [invariance] table")
    kinds_raw = raw.get("kinds", {})
    if not isinstance(kinds_raw, dict) or not kinds_raw:
        raise fail("kinds", f"expected at least one [kinds.<kind>] table, kinds being some of {', '.join(TRANSFORMS)}")
    kinds = {}
    for kind, spec in kinds_raw.items():
        key = f"kinds.{kind}"
        if kind not in TRANSFORMS:
            raise fail(key, f"unknown kind; expected one of {', '.join(TRANSFORMS)}")
        if not isinstance(spec, dict):
            raise fail(key, "expected a table with weight and share")
        allowed = _KIND_KEYS + (("texts",) if kind == "appended_text" else ())
        for extra in sorted(set(spec) - set(allowed)):
            raise fail(f"{key}.{extra}", f"unknown key; expected {', '.join(allowed)}")
        for missing in [k for k in _KIND_KEYS if k not in spec]:
            raise fail(f"{key}.{missing}", "missing")
        weight = _number(spec["weight"], lambda v: v > 0, "a number > 0", f"{key}.weight", fail)
        share = _number(spec["share"], lambda v: 0 <= v < 1, "a number in [0, 1)", f"{key}.share", fail)
        texts = spec.get("texts", ())
        if not isinstance(texts, list | tuple) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise fail(f"{key}.texts", "expected a list of non-empty strings")
        kinds[kind] = KindSpec(weight, share, tuple(texts))
    inv = raw.get("invariance", {})
    if not isinstance(inv, dict):
        raise fail("invariance", "expected a table with share")
    for extra in sorted(set(inv) - {"share"}):
        raise fail(f"invariance.{extra}", "unknown key; expected share")
    inv_share = _number(
        inv.get("share", DEFAULT_INVARIANCE_SHARE), lambda v: 0 <= v < 1, "a number in [0, 1)", "invariance.share", fail
    )
    profile = Profile(name, kinds, inv_share)
    if profile.total_share(invariance=True) >= 0.9:
        raise fail(
            "kinds",
            f"the shares (with invariance.share) sum to {profile.total_share(True):g}; expected less than 0.9, so "
            "that the training pairs stay at least a tenth of each batch",
        )
    return profile


def _number(value: Any, ok: Any, expected: str, key: str, fail: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
        raise fail(key, f"expected {expected}, got {value!r}")
    return float(value)
