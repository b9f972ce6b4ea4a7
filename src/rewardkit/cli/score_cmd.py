"""``rewardkit score INPUT --model M --out OUT``: score a JSONL / CSV / Parquet file with a reward model.

Rows are (prompt, response), chat ``messages`` ending in the assistant's response, or pairs
(prompt, response_a, response_b | chosen, rejected). Output: the input rows plus score, score_normalized,
score_std (ensembles), truncated and precision (fp32, bf16 or int8: what the scores were computed in); pairs
get score_a, score_b and the calibrated p_a_better.

Every mistake a user can make (options, output path, input file, rows) is found before the model loads,
except what needs the model itself (its path, a --max-length too short for its special tokens, a conversation
its chat template refuses: one line naming the input's line and field, and no output), which is found once it
has loaded and before any row is scored. The input is read two or three times, a row or a chunk at a time
(``rewardkit.scoring.files``), so a corpus of any length scores in the memory of a chunk.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewardkit.cli.dpo_options import BetaOption, DPOAverageOption, DPOPolicyOption, DPORefOption, DPOSpec, dpo_spec
from rewardkit.cli.output import UserError, emit_json, progress_bar, stderr, stdout
from rewardkit.cli.paths import check_out_file
from rewardkit.settings import DEVICE_HELP, DTYPE_HELP, SCORE_DTYPES

if TYPE_CHECKING:
    from rewardkit.engines.ray import RayOptions
    from rewardkit.rl.dpo_scorer import DPOScorer
    from rewardkit.scoring.scorer import BatchScorer

MODEL_HELP = (
    "Reward model: a saved model folder (config.json beside the weights), an ensemble folder, or a Hugging Face "
    "Hub id. Default: the bundled all-MiniLM-L6-v2 backbone, whose scoring head is untrained (a smoke test, "
    "not a reward model)."
)


ENGINES = ("local", "ray")
EngineOption = Annotated[
    str,
    typer.Option(
        help="local: this process. ray: Ray Data actors on a cluster (--ray-address / RAY_ADDRESS, else a local "
        "one; pip install rewardkit\\[ray]; docs/scale.md)."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option("--ray-address", help="--engine ray: the cluster to join (default: RAY_ADDRESS, else start one)."),
]
ActorsOption = Annotated[int, typer.Option(help="--engine ray: actors in the pool, each loading the model once.")]
CpusOption = Annotated[float, typer.Option("--actor-cpus", help="--engine ray: CPUs per actor (its torch threads).")]
GpusOption = Annotated[
    float, typer.Option("--actor-gpus", help="--engine ray: GPUs per actor (0.5: two actors share one).")
]


def ray_options(
    engine: str, *, address: str | None, actors: int, cpus: float, gpus: float, scorer: dict
) -> RayOptions | None:
    """The Ray engine's options (None for the local engine), or a UserError: an unknown engine, Ray not
    installed (one line saying how to get it), a bad actor count or size."""
    if engine not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "local":
        return None
    from rewardkit.engines.ray import RayMissingError, RayOptions, require_ray

    try:
        require_ray()
        return RayOptions(address=address, actors=actors, cpus_per_actor=cpus, gpus_per_actor=gpus, scorer=scorer)
    except (RayMissingError, ValueError) as exc:
        raise UserError(str(exc)) from None


def check_scorer_options(dtype: str, device: str, max_length: int | None = None) -> None:
    """A clear error for a --dtype, --device or --max-length the scorer would reject, before the model loads."""
    from rewardkit.model.device import resolve_device
    from rewardkit.scoring.scorer import MaxLengthError, check_max_length

    if dtype not in SCORE_DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(SCORE_DTYPES)}, got {dtype!r}")
    try:
        resolve_device(device)
    except ValueError as exc:
        raise UserError(f"--device: {exc}") from None
    try:
        check_max_length(max_length)
    except MaxLengthError as exc:
        raise UserError(f"--max-length: {exc}") from None


def default_out_path(input_path: Path) -> Path:
    """INPUT.scored.jsonl beside the input: only the input format's suffix is replaced (run.v2.jsonl ->
    run.v2.scored.jsonl; cutting at the first dot wrote run.scored.jsonl, another file's name)."""
    from rewardkit.data.importers.reader import data_suffix

    name = input_path.name
    return input_path.with_name(name[: len(name) - len(data_suffix(name))] + ".scored.jsonl")


AggregateOption = Annotated[
    str,
    typer.Option(
        help="An ensemble's score: mean of its members, uwo (mean - --uwo-lambda x their std) or wco (the lowest "
        "member), all on the members' own reference scales; a single model's score is the same under all three "
        "(docs/policy-rewards.md)."
    ),
]
UwoLambdaOption = Annotated[
    float | None,
    typer.Option(help="--aggregate uwo: the weight of the members' std (default 0.5).", show_default=False),
]


def check_aggregate_options(aggregate: str, uwo_lambda: float | None, dpo: DPOSpec | None) -> dict[str, object]:
    """``load_scorer``'s aggregate options, or a UserError: an unknown aggregate, a bad lambda, a lambda without
    uwo, an aggregate beside --dpo-policy (one policy, no members to combine)."""
    from rewardkit.scoring.aggregate import DEFAULT_UWO_LAMBDA, check_aggregate

    if uwo_lambda is not None and aggregate != "uwo":
        raise UserError(f"--uwo-lambda only goes with --aggregate uwo (got --aggregate {aggregate})")
    if dpo is not None and aggregate != "mean":
        raise UserError(f"--aggregate {aggregate}: combines an ensemble's members; --dpo-policy has none")
    lam = DEFAULT_UWO_LAMBDA if uwo_lambda is None else uwo_lambda
    try:
        check_aggregate(aggregate, lam)
    except ValueError as exc:
        raise UserError(f"--{str(exc).replace('_', '-')}") from None
    return {"aggregate": aggregate, "uwo_lambda": lam}


def load_checked_scorer(
    model: str,
    *,
    max_length: int | None,
    token_budget: int,
    dtype: str,
    threads: int | None,
    device: str,
    **aggregate: object,
) -> BatchScorer:
    """``load_scorer``, with its errors for a user's model or --max-length as one line each."""
    from rewardkit.model.source import ModelNotFoundError
    from rewardkit.scoring.scorer import MaxLengthError, load_scorer

    try:
        return load_scorer(
            model,
            max_length=max_length,
            token_budget=token_budget,
            dtype=dtype,
            threads=threads,
            device=device,
            **aggregate,  # type: ignore[arg-type]
        )
    except ModelNotFoundError as exc:
        raise UserError(f"--model: {exc}") from None
    except MaxLengthError as exc:
        raise UserError(f"--max-length: {exc}" if max_length is not None else f"model {model!r}: {exc}") from None
    except (OSError, ValueError) as exc:  # a folder with config.json that transformers cannot load (as eval reports it)
        reason = " ".join(str(exc).split()) or type(exc).__name__  # transformers' messages run over several lines
        raise UserError(f"cannot load model {model!r}: {reason}") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def score(
        input: Annotated[
            str,
            typer.Argument(
                metavar="INPUT",
                help="JSONL (.jsonl/.jsonl.gz/.json), CSV or Parquet file of rows to score; with --engine ray also a "
                "folder of such shards, or a URI (file://, s3://, gs://).",
            ),
        ],
        model: Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP, show_default=False)] = "default",
        out: Annotated[
            str | None,
            typer.Option(
                "--out",
                "-o",
                help="Output file (.jsonl/.jsonl.gz/.csv/.parquet). Default: INPUT.scored.jsonl beside INPUT "
                "(run.v2.jsonl -> run.v2.scored.jsonl). --engine ray: a folder (or URI) for the scored shards, "
                "each under its input name.",
            ),
        ] = None,
        max_length: Annotated[
            int | None,
            typer.Option(
                help="Token limit per row, at least 8 plus the model's special tokens (default: the model card's)."
            ),
        ] = None,
        token_budget: Annotated[
            int,
            typer.Option(
                help="Tokens per batch (rows x padded width; CPU: 1-4K is fastest per token, raise on a GPU)."
            ),
        ] = 2048,
        dtype: Annotated[str, typer.Option(help=DTYPE_HELP + ".")] = "auto",
        threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")] = None,
        device: Annotated[str, typer.Option(help=DEVICE_HELP + ".")] = "auto",
        json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
        step_aggregate: Annotated[
            str,
            typer.Option(
                help="Process reward models: a solution's score from its step scores: min, product, mean or last "
                "(default: the model card's). Rows are prompt+response (split into steps at the card's separator) "
                "or prompt+steps; each gets step_scores.",
                show_default=False,
            ),
        ] = "",
        engine: EngineOption = "local",
        ray_address: RayAddressOption = None,
        actors: ActorsOption = 1,
        cpus_per_actor: CpusOption = 1.0,
        gpus_per_actor: GpusOption = 0.0,
        aggregate: AggregateOption = "mean",
        uwo_lambda: UwoLambdaOption = None,
        dpo_policy: DPOPolicyOption = None,
        dpo_ref: DPORefOption = None,
        beta: BetaOption = None,
        dpo_average: DPOAverageOption = False,
        shard_format: Annotated[
            str | None,
            typer.Option(
                help="--engine ray: write every shard as .jsonl, .jsonl.gz, .csv or .parquet (default: its input's)."
            ),
        ] = None,
    ) -> None:
        """Score every row of INPUT with a reward model (fast token-budget batches, input order kept), or with a
        DPO policy's implicit reward (--dpo-policy, --dpo-ref, --beta)."""
        dpo = dpo_spec(
            dpo_policy,
            dpo_ref,
            beta,
            dpo_average,
            model=None if model == "default" else model,
            dtype=dtype,
            engine=engine,
        )
        aggregate_options = check_aggregate_options(aggregate, uwo_lambda, dpo)
        scorer_options = {"max_length": max_length, "token_budget": token_budget, "dtype": dtype, "device": device}
        scorer_options |= aggregate_options
        on_ray = ray_options(
            engine, address=ray_address, actors=actors, cpus=cpus_per_actor, gpus=gpus_per_actor, scorer=scorer_options
        )
        if on_ray is not None:
            check_scorer_options(dtype, device, max_length)
            score_on_ray(model, input, out, on_ray, shard_format, json_)
            return
        input_path = Path(input)
        from rewardkit.model.formatting import template_kind
        from rewardkit.scoring.files import check_chat_template, check_input, score_file
        from rewardkit.scoring.rows import InputError
        from rewardkit.scoring.writers import check_output_path, writes_parquet

        out_path = Path(out) if out else default_out_path(input_path)
        try:
            # cheap checks first, before reading a large file or loading a model
            check_output_path(out_path, input_path)
            check_out_file(out_path, "--out")
            check_scorer_options(dtype, device, max_length)
            if step_aggregate:
                from rewardkit.model.step_aggregate import check_step_aggregate

                try:
                    check_step_aggregate(step_aggregate)
                except ValueError as exc:
                    raise UserError(f"--step-aggregate: {exc}") from None
            # the whole input is checked (and counted, for the bar) before the model loads, holding no rows
            checked = check_input(input_path, schema=writes_parquet(out_path))
            scorer: BatchScorer | DPOScorer = (
                load_checked_scorer(model, threads=threads, step_aggregate=step_aggregate, **scorer_options)
                if dpo is None
                else load_dpo_scorer(
                    dpo, max_length=max_length, token_budget=token_budget, dtype=dtype, threads=threads, device=device
                )
            )
            if step_aggregate and not getattr(scorer, "is_prm", False):
                raise UserError("--step-aggregate: this model scores whole responses, not steps (not a PRM)")
            if dpo is None and aggregate != "mean" and len(scorer.members) == 1:
                stderr.print(
                    f"note: {model} is one model, not an ensemble: --aggregate {aggregate} is its score",
                    highlight=False,
                    markup=False,
                )
            start = time.perf_counter()
            if (
                template_kind(scorer.tokenizer) == "chat"
            ):  # a conversation it refuses: found before any scoring, not in it
                with progress_bar("checking chat template", total=checked.rows, unit="rows") as bar:
                    checked = replace(
                        checked,
                        conversations=check_chat_template(
                            scorer.tokenizer, input_path, checked.kind, on_rows=bar.advance
                        ),
                    )
            with progress_bar("scoring", total=checked.rows, unit="rows") as bar:
                scored = score_file(scorer, input_path, out_path, checked=checked, on_rows=bar.advance)
            seconds = time.perf_counter() - start
        except InputError as exc:  # a bad row, or one the model's chat template refuses: nothing is written
            raise UserError(str(exc)) from None
        truncated = scored.truncated_rows
        summary = {
            "rows": scored.rows,
            "out": str(out_path),
            "model_version": scorer.version,
            "dtype": str(scorer.dtype).replace("torch.", ""),
            "precision": scorer.precision,
            "truncated_rows": truncated,
            "seconds": round(seconds, 3),
            "rows_per_s": round(scored.rows / seconds, 1) if seconds else None,
        }
        summary |= scorer.row_tags | ({} if dpo is None else dpo.meta())  # which reward: aggregate, DPO beta
        if json_:
            emit_json(summary)
            return
        kind = "" if dpo is None else f"{dpo.meta()['reward_kind']} beta {dpo.beta}, "
        kind += f"{aggregate}, " if "aggregate" in summary else ""
        stdout.print(
            f"scored {scored.rows} rows -> {out_path} ({summary['rows_per_s']} rows/s, {kind}{summary['precision']}, "
            f"{truncated} truncated)",
            highlight=False,
        )


def load_dpo_scorer(
    dpo: DPOSpec, *, max_length: int | None, token_budget: int, dtype: str, threads: int | None, device: str
) -> DPOScorer:
    """The DPO pair as the file scorer's model (``rewardkit.rl.dpo_scorer``), or a one-line UserError."""
    import torch

    from rewardkit.rl.dpo_scorer import DPOScorer, dpo_version

    if threads:
        torch.set_num_threads(threads)
    reward = dpo.load(max_length=max_length, dtype=dtype, device=device, token_budget=token_budget)
    return DPOScorer(reward, version=dpo_version(dpo.policy, dpo.ref))


def score_on_ray(
    model: str, input: str, out: str | None, options: RayOptions, shard_format: str | None, json_: bool
) -> None:
    """``rewardkit score --engine ray``: every shard of INPUT scored by the actor pool into the folder OUT."""
    from rewardkit.engines.ray import score_shards
    from rewardkit.scoring.rows import InputError
    from rewardkit.scoring.writers import OUTPUT_SUFFIXES

    if shard_format is not None and "." + shard_format.lstrip(".") not in OUTPUT_SUFFIXES:
        raise UserError(f"--shard-format must be one of {', '.join(OUTPUT_SUFFIXES)}, got {shard_format!r}")
    out_uri = out or input.rstrip("/") + ".scored"
    if "://" not in out_uri and Path(out_uri).is_file():
        raise UserError(f"--out {out_uri}: is a file; --engine ray writes a folder of scored shards")
    try:
        run = score_shards(
            model, input, out_uri, options, out_suffix=None if shard_format is None else "." + shard_format.lstrip(".")
        )
    except InputError as exc:
        raise UserError(str(exc)) from None
    except (OSError, ValueError) as exc:  # the model, seen by the first actor that loaded it
        raise UserError(f"--engine ray: {' '.join(str(exc).split())}") from None
    summary = {
        "rows": run.rows,
        "out": out_uri,
        "shards": len(run.outputs),
        "model_version": run.model_version,
        "precision": run.precision,
        "truncated_rows": run.truncated_rows,
        "startup_seconds": round(run.startup_seconds, 3),
        "seconds": round(run.seconds, 3),
        "scoring_seconds": round(run.scoring_seconds, 3),
        "rows_per_s": round(run.rows / run.scoring_seconds, 1) if run.scoring_seconds else None,
    }
    if json_:
        emit_json(summary)
        return
    stdout.print(
        f"scored {run.rows} rows in {len(run.outputs)} shards -> {out_uri} ({summary['rows_per_s']} rows/s while "
        f"scoring, {summary['precision']}, {run.truncated_rows} truncated; startup {summary['startup_seconds']} s)",
        highlight=False,
    )
