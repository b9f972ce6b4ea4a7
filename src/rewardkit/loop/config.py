"""The loop's configuration, one TOML file:

    name = "rm"                     # the registered model the loop trains and promotes
    min_new_comparisons = 200       # trigger: comparisons added since the champion's snapshot
    max_age_hours = 168             # trigger: the champion's age (optional)
    warm_start = "champion"         # "champion": fine-tune the champion's weights; "backbone": start afresh
    backbone = "all-MiniLM-L6-v2"   # used when warm_start = "backbone" or there is no champion yet
    golden = ""                     # a golden snapshot id (prefix); "" = the newest one marked golden
    policy = "policy.toml"          # the promotion policy (registry/policy.py); "" = its defaults
    lease_ttl_s = 120               # a dead tick's lease is taken over after this long
    max_attempts = 3                # a step that failed this many times ends the run as failed
    work_dir = ""                   # where runs train; "" = RK_HOME/loop/<name>
    device = "auto"                 # where the gates evaluate
    mlflow_uri = ""                 # also mirror registered versions and promotions to this MLflow registry
    [compile]                       # CompileConfig fields: what the training snapshot holds (hold golden out!)
    sources = ["app"]
    [train]                         # TrainConfig fields (not data/out/backbone)
    max_steps = 200
    [eval]                          # EvalConfig fields for the gates
    n_boot = 1000

Relative paths (policy, work_dir, backbone when it is a folder) are relative to the file. Unknown keys are
refused, naming them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class LoopConfigError(ValueError):
    pass


@dataclass(frozen=True)
class LoopConfig:
    name: str
    min_new_comparisons: int = 200
    max_age_hours: float | None = None
    warm_start: str = "champion"
    backbone: str = ""
    golden: str = ""
    policy: str = ""
    lease_ttl_s: float = 120.0
    max_attempts: int = 3
    work_dir: str = ""
    compile: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    mlflow_uri: str = ""

    def __post_init__(self) -> None:
        from rewardkit.data.compile import CompileConfig

        if self.warm_start not in ("champion", "backbone"):
            raise LoopConfigError(f'warm_start: expected "champion" or "backbone", got {self.warm_start!r}')
        if self.min_new_comparisons < 1:
            raise LoopConfigError(f"min_new_comparisons: expected >= 1, got {self.min_new_comparisons}")
        if self.lease_ttl_s <= 0 or self.max_attempts < 1:
            raise LoopConfigError("lease_ttl_s must be > 0 and max_attempts >= 1")
        # [compile] is checked here; [train] and [eval] (their modules import torch, which an idle tick must not
        # pay for) by ``check_heavy`` when a run starts, before any work
        known = {f.name for f in fields(CompileConfig)}
        for key in self.compile:
            if key not in known:
                raise LoopConfigError(f"[compile] {key}: unknown key (known: {', '.join(sorted(known))})")
        for key in ("data", "out", "backbone", "resume"):  # the loop sets these; the rest is checked at the train step
            if key in self.train:
                raise LoopConfigError(f"[train] {key}: set by the loop, not settable here")
        try:
            self.compile_config()
        except (TypeError, ValueError) as exc:
            raise LoopConfigError(str(exc)) from None

    def check_heavy(self) -> None:
        """Check [train] and [eval] against TrainConfig and EvalConfig (unknown keys, bad values)."""
        from rewardkit.evaluate.run import EvalConfig
        from rewardkit.train import TrainConfig

        for section, cls in (("train", TrainConfig), ("eval", EvalConfig)):
            known = {f.name for f in fields(cls)}
            for key in getattr(self, section):
                if key not in known:
                    raise LoopConfigError(f"[{section}] {key}: unknown key")
        try:
            self.eval_config()
        except (TypeError, ValueError) as exc:
            raise LoopConfigError(f"[eval] {exc}") from None

    @property
    def max_age_s(self) -> float | None:
        return None if self.max_age_hours is None else self.max_age_hours * 3600

    def compile_config(self) -> Any:
        from rewardkit.data.compile import CompileConfig

        tuples = ("sources", "annotator_kinds", "attributes", "fractions")
        return CompileConfig(**{k: tuple(v) if k in tuples else v for k, v in self.compile.items()})

    def eval_config(self) -> Any:
        from rewardkit.evaluate.run import EvalConfig

        return EvalConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.eval.items()})

    def compile_filter(self) -> Any:
        from rewardkit.store.queries import ComparisonFilter

        c = self.compile_config()
        return ComparisonFilter(c.sources, c.annotator_kinds, c.attributes, c.since, c.until)

    def resolved_work_dir(self) -> Path:
        if self.work_dir:
            return Path(self.work_dir)
        from rewardkit.settings import get_settings

        return get_settings().home / "loop" / self.name


def load_loop_config(path: Path) -> LoopConfig:
    if not path.is_file():
        raise LoopConfigError(f"loop config {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise LoopConfigError(f"{path}: not valid TOML ({exc})") from None
    known = {f.name for f in fields(LoopConfig)}
    for key in raw:
        if key not in known:
            raise LoopConfigError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    if "name" not in raw:
        raise LoopConfigError(f"{path}: name is required (the registered model the loop trains)")
    base = path.parent
    for key in ("policy", "work_dir", "backbone"):
        value = raw.get(key)
        if value and (key != "backbone" or (base / value).exists()) and not Path(value).is_absolute():
            raw[key] = str(base / value)
    try:
        return LoopConfig(**raw)
    except LoopConfigError as exc:
        raise LoopConfigError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise LoopConfigError(f"{path}: {exc}") from None
