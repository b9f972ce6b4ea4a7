"""The options that make ``rewardkit score`` and ``rewardkit eval`` use a DPO policy as the reward model:
``--dpo-policy P [--dpo-ref R] --beta B [--dpo-average]`` (the implicit reward of ``rewardkit.rl.dpo``, the
RewardBench convention for DPO models), checked before anything loads and loaded with one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewardkit.cli.output import UserError

if TYPE_CHECKING:
    from rewardkit.evaluate.score_fns import LoadedModel
    from rewardkit.rl.dpo import DPOReward

DEFAULT_BETA = 0.1  # TRL's DPOConfig and the DPO paper's default

DPOPolicyOption = Annotated[
    str | None,
    typer.Option(
        "--dpo-policy",
        help="Score with a DPO-trained policy instead of a reward model: r = beta * (log pi(y|x) - log pi_ref(y|x)) "
        "over the response tokens (any causal LM folder or Hub id; docs/policy-rewards.md).",
        show_default=False,
    ),
]
DPORefOption = Annotated[
    str | None,
    typer.Option(
        "--dpo-ref",
        help="--dpo-policy: the reference (SFT) model it was trained from; it must share the policy's tokenizer. "
        "Without it: the reference-free reward beta * log pi(y|x).",
        show_default=False,
    ),
]
BetaOption = Annotated[
    float | None,
    typer.Option("--beta", help=f"--dpo-policy: the DPO beta (default {DEFAULT_BETA}).", show_default=False),
]
DPOAverageOption = Annotated[
    bool,
    typer.Option(
        "--dpo-average", help="--dpo-policy: average the log-ratio per response token (SimPO-style) instead of summing."
    ),
]
DPO_DTYPES = {"auto": "fp32", "fp32": "fp32", "bf16": "bf16"}
"""--dtype as a DPO pair takes it: auto is fp32 (a log-prob sum over hundreds of tokens is where bf16 rounding
adds up; no precision is measured for causal LMs), int8 is not offered for them."""


@dataclass(frozen=True)
class DPOSpec:
    """A DPO pair as the command line named it (checked: ``dpo_spec``)."""

    policy: str
    ref: str | None
    beta: float
    normalize: str

    def meta(self) -> dict[str, Any]:
        """What a report or a --json summary says about the reward (called once the models are loaded)."""
        from rewardkit.rl.dpo import reward_kind

        return {
            "reward_kind": reward_kind(self.ref is not None),
            "dpo_policy": self.policy,
            "dpo_ref": self.ref,
            "beta": self.beta,
            "dpo_normalize": self.normalize,
        }

    def load(self, *, max_length: int | None, dtype: str, device: str, token_budget: int | None = None) -> DPOReward:
        """Both models (tokenizers compared first), or a UserError naming the option at fault."""
        from rewardkit.model.source import ModelNotFoundError, check_model_source
        from rewardkit.rl.dpo import DPOReward, TokenizerMismatchError

        for option, path in (("--dpo-policy", self.policy), ("--dpo-ref", self.ref)):
            try:
                if path is not None:
                    check_model_source(path)
            except ModelNotFoundError as exc:
                raise UserError(f"{option}: {exc}") from None
        options: dict[str, Any] = {"beta": self.beta, "normalize": self.normalize, "max_length": max_length}
        if token_budget is not None:
            options["token_budget"] = token_budget
        try:
            return DPOReward.load(self.policy, self.ref, device=device, dtype=DPO_DTYPES[dtype], **options)
        except TokenizerMismatchError as exc:
            raise UserError(f"--dpo-ref {self.ref}: {exc}") from None
        except (OSError, ValueError) as exc:  # not a causal LM, a max_length past its positions
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(f"cannot load the DPO pair (--dpo-policy {self.policy}): {reason}") from None

    def load_for_eval(self, *, max_length: int | None, dtype: str, device: str) -> LoadedModel:
        """The pair as ``rewardkit.evaluate`` takes a model: its score function, temperature 1 (DPO's own
        Bradley-Terry model: P(a > b) = sigmoid(r_a - r_b), beta already in r)."""
        from rewardkit.evaluate.score_fns import LoadedModel
        from rewardkit.scoring.precision import precision_name

        reward = self.load(max_length=max_length, dtype=dtype, device=device)
        return LoadedModel(
            score_fn=reward.score_fn(),
            temperature=1.0,
            name=self.policy,
            dtype=str(reward.dtype).replace("torch.", ""),
            precision=precision_name(reward.dtype),
        )


def dpo_spec(
    policy: str | None,
    ref: str | None,
    beta: float | None,
    average: bool,
    *,
    model: str | None,
    dtype: str,
    engine: str,
) -> DPOSpec | None:
    """The DPO pair the options name (None when --dpo-policy is not given), or a UserError for options that do
    not go together: --dpo-ref/--beta/--dpo-average without --dpo-policy, a --model beside it, a beta that is
    not positive, a --dtype or --engine it does not run with."""
    if policy is None:
        given = [name for name, value in (("--dpo-ref", ref), ("--beta", beta), ("--dpo-average", average)) if value]
        if given:
            raise UserError(f"{', '.join(given)} only go with --dpo-policy (the DPO policy to score with)")
        return None
    if model is not None:
        raise UserError(f"--model {model} and --dpo-policy {policy}: give one of them (a reward model or a DPO pair)")
    if beta is not None and not (beta > 0 and beta < float("inf")):
        raise UserError(f"--beta: expected a positive number, got {beta}")
    if dtype not in DPO_DTYPES:
        raise UserError(f"--dtype {dtype}: a DPO pair scores in {', '.join(DPO_DTYPES)} (auto is fp32)")
    if engine != "local":
        raise UserError(f"--engine {engine}: --dpo-policy runs on the local engine only")
    return DPOSpec(policy, ref, DEFAULT_BETA if beta is None else beta, "mean" if average else "sum")
