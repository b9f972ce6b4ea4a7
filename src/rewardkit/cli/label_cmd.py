"""``rewardkit label ai``: comparisons made by an LLM judge behind any OpenAI-compatible chat endpoint (vLLM,
Ollama, llama.cpp server, OpenAI), guided by a constitution or rubric file; ``rewardkit label revise``: the
constitutional mode (critique and rewrite a response against each principle, store revision over original).

Run ``rewardkit label ai --help``. The guide: docs/policy-rewards.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, stdout
from rewardkit.cli.paths import check_out_file

EndpointOpt = Annotated[
    str,
    typer.Option(
        "--endpoint",
        envvar="RK_JUDGE_ENDPOINT",
        help="The judge's OpenAI-compatible API root, e.g. http://localhost:8000/v1 (vLLM), "
        "http://localhost:11434/v1 (Ollama), http://localhost:8080/v1 (llama.cpp), https://api.openai.com/v1.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        help="The judge model's name as the endpoint knows it; stored as the annotator id.",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="RK_JUDGE_API_KEY",
        help="Bearer key for the endpoint (env RK_JUDGE_API_KEY).",
        show_default=False,
    ),
]
ConstitutionOpt = Annotated[
    Path,
    typer.Option(
        "--constitution",
        help="Principles or rubric file: TOML (a principles array of name and text) or markdown (## name sections); "
        "see docs/policy-rewards.md.",
        show_default=False,
    ),
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", help="Requests in flight at most.")]
TokensOpt = Annotated[
    int | None,
    typer.Option("--max-tokens-budget", help="Stop cleanly once the judge has used this many tokens (in + out)."),
]
CostOpt = Annotated[
    float | None,
    typer.Option("--max-cost", help="Stop cleanly once this many USD are spent (needs --price-in/--price-out)."),
]
PriceInOpt = Annotated[float, typer.Option("--price-in", help="USD per million prompt tokens (for --max-cost).")]
PriceOutOpt = Annotated[float, typer.Option("--price-out", help="USD per million completion tokens.")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Also append the labels to this JSONL file (resumable: keys in it are skipped)."),
]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="Do not write to the store (then --out is needed).")]
SourceOpt = Annotated[str, typer.Option("--source", help="The source name stored on each new comparison.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for one answer before retrying.")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries per request on 429, 5xx and timeouts.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON document.")]


def _check_common(concurrency: int, out: Path | None, no_store: bool, max_cost: float | None, prices: float) -> None:
    if concurrency < 1:
        raise UserError(f"--concurrency: expected at least 1, got {concurrency}")
    if no_store and out is None:
        raise UserError("--no-store needs --out FILE: the labels must go somewhere")
    if out is not None:
        check_out_file(out, "--out")
    if max_cost is not None and prices == 0:
        raise UserError("--max-cost needs --price-in and/or --price-out (USD per million tokens) to count the cost")


def _constitution(path: Path) -> Any:
    from rewardkit.label.constitution import ConstitutionError, load_constitution

    try:
        return load_constitution(path)
    except ConstitutionError as exc:
        raise UserError(str(exc)) from None


def _sinks(out: Path | None, no_store: bool, source: str) -> tuple[Any, set[str], list[Any]]:
    """(sink, keys already labelled, the sinks) for the store and/or the JSONL file."""
    from rewardkit.label.outputs import JsonlSink, StoreSink, labelled_in_store

    sinks: list[Any] = []
    done: set[str] = set()
    if not no_store:
        from rewardkit.cli.db_cmd import _open
        from rewardkit.store.engine import session_scope

        factory = _open()
        with session_scope(factory) as session:
            done |= labelled_in_store(session, source)
        sinks.append(StoreSink(factory))
    if out is not None:
        jsonl = JsonlSink(out)
        done |= jsonl.labelled() if no_store else set()  # with the store, the store says what is done
        sinks.append(jsonl)

    def sink(comparisons: list[Any]) -> None:
        for s in sinks:
            s(comparisons)

    return sink, done, sinks


def _run(coroutine_factory: Any, endpoint: str, model: str, api_key: str | None, **client_options: Any) -> Any:
    from rewardkit.label.client import ChatClient

    async def go() -> Any:
        try:
            client = ChatClient(endpoint, model, api_key=api_key, **client_options)
        except ValueError as exc:
            raise UserError(f"--endpoint: {exc}") from None
        try:
            return await coroutine_factory(client)
        finally:
            await client.close()

    return asyncio.run(go())


def _report(summary: Any, json_: bool, noun: str) -> None:
    result = summary.as_dict()
    if json_:
        emit_json(result)
    else:
        stdout.print(
            f"{noun} {result['labelled']:,} (ties {result['ties']:,}), dropped for disagreement "
            f"{result['dropped_disagreement']:,}, unparseable {result['unparseable']:,}, already done "
            f"{result['skipped_done']:,}, not reached {result['not_reached']:,}; {result['requests']:,} requests "
            f"({result['retries']:,} retried), tokens {result['tokens_in']:,} in / {result['tokens_out']:,} out, "
            f"cost ${result['cost']:.4f}",
            highlight=False,
        )
    if summary.stopped and not summary.stopped.startswith(("token budget", "cost budget")):
        raise UserError(f"stopped early, everything labelled so far is kept: {summary.stopped}")
    if summary.stopped:
        stdout.print(f"stopped: {summary.stopped}; run the same command again to go on", highlight=False)


def register(app: typer.Typer) -> None:
    label = typer.Typer(
        help="AI feedback: an LLM judge behind an OpenAI-compatible endpoint labels pairs or revises responses.",
        no_args_is_help=True,
    )
    app.add_typer(label, name="label")

    @label.command("ai")
    def ai(
        endpoint: EndpointOpt,
        model: ModelOpt,
        constitution: ConstitutionOpt,
        pairs: Annotated[
            Path | None,
            typer.Option(
                "--pairs",
                help="JSONL of unlabelled pairs: prompt + responses (a list of two) "
                "(or response_a/response_b, or chosen/rejected).",
            ),
        ] = None,
        from_store: Annotated[
            bool, typer.Option("--from-store", help="Label the pairs of comparisons already in the store instead.")
        ] = False,
        from_source: Annotated[
            list[str] | None, typer.Option("--from-source", help="With --from-store: only these sources (repeatable).")
        ] = None,
        from_kind: Annotated[
            str, typer.Option("--from-kind", help="With --from-store: annotator kind of the comparisons to relabel.")
        ] = "human",
        samples: Annotated[
            int, typer.Option("--samples", help="Verdicts per order (self-consistency; majority per order).")
        ] = 1,
        on_disagreement: Annotated[
            str,
            typer.Option(
                "--on-disagreement", help="When the two orders disagree: tie (store a tie) or drop (store nothing)."
            ),
        ] = "tie",
        temperature: Annotated[
            float | None, typer.Option("--temperature", help="Judge temperature (default 0; 0.7 with --samples > 1).")
        ] = None,
        concurrency: ConcurrencyOpt = 8,
        max_tokens_budget: TokensOpt = None,
        max_cost: CostOpt = None,
        price_in: PriceInOpt = 0.0,
        price_out: PriceOutOpt = 0.0,
        out: OutOpt = None,
        no_store: NoStoreOpt = False,
        source: SourceOpt = "ai-feedback",
        timeout: TimeoutOpt = 60.0,
        retries: RetriesOpt = 5,
        api_key: KeyOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Label pairs with an LLM judge. Each pair is asked in both orders (position swap); orders that
        disagree become a tie or are dropped (--on-disagreement). The judge answers JSON (a fallback parser
        reads [[A]]-style text); answers without a verdict are counted as unparseable and stored nowhere. Each
        label is a comparison by annotator (MODEL, kind ai) with the judge's rationale. Runs stop cleanly at
        --max-tokens-budget / --max-cost, keeping every label made; running the same command again skips the
        pairs already labelled (idempotent keys: judge, constitution file content, prompt, responses)."""
        from rewardkit.label.inputs import InputError, pairs_from_store, read_pairs
        from rewardkit.label.run import ON_DISAGREEMENT, Budget, LabelConfig, label_pairs
        from rewardkit.store.queries import ComparisonFilter

        if (pairs is None) == (not from_store):
            raise UserError("give either --pairs FILE or --from-store")
        if on_disagreement not in ON_DISAGREEMENT:
            raise UserError(f"--on-disagreement: expected tie or drop, got {on_disagreement!r}")
        if samples < 1:
            raise UserError(f"--samples: expected at least 1, got {samples}")
        _check_common(concurrency, out, no_store, max_cost, price_in + price_out)
        rules = _constitution(constitution)
        if pairs is not None:
            try:
                items = read_pairs(pairs)
            except InputError as exc:
                raise UserError(str(exc)) from None
        else:
            from rewardkit.cli.db_cmd import _open
            from rewardkit.store.engine import session_scope

            flt = ComparisonFilter(sources=tuple(from_source) if from_source else None, annotator_kinds=(from_kind,))
            with session_scope(_open()) as session:
                items = pairs_from_store(session, flt)
            if not items:
                raise UserError(f"--from-store: no two-response comparisons by {from_kind} annotators match")
        sink, done, _ = _sinks(out, no_store, source)
        config = LabelConfig(samples=samples, on_disagreement=on_disagreement, temperature=temperature, source=source)
        budget = Budget(max_tokens_budget, max_cost, price_in, price_out)
        summary = _run(
            lambda client: label_pairs(items, client, rules, config, sink, budget=budget, done=done),
            endpoint,
            model,
            api_key,
            concurrency=concurrency,
            timeout_s=timeout,
            max_retries=retries,
        )
        _report(summary, json_, "labelled")

    @label.command("revise")
    def revise(
        endpoint: EndpointOpt,
        model: ModelOpt,
        constitution: ConstitutionOpt,
        responses: Annotated[
            Path,
            typer.Option("--responses", help="JSONL of prompt + response to critique and revise.", show_default=False),
        ],
        principle: Annotated[
            list[str] | None, typer.Option("--principle", help="Only these principles (repeatable; default all).")
        ] = None,
        concurrency: ConcurrencyOpt = 8,
        max_tokens_budget: TokensOpt = None,
        max_cost: CostOpt = None,
        price_in: PriceInOpt = 0.0,
        price_out: PriceOutOpt = 0.0,
        out: OutOpt = None,
        no_store: NoStoreOpt = False,
        source: SourceOpt = "constitutional",
        timeout: TimeoutOpt = 60.0,
        retries: RetriesOpt = 5,
        api_key: KeyOpt = None,
        json_: JsonOpt = False,
    ) -> None:
        """Constitutional mode: for each response and principle the judge critiques the response against the
        principle, then rewrites it; the pair (revision preferred over original) is stored with the principle
        as its attribute and the critique as its rationale. Budgets and resuming as in `label ai`."""
        from rewardkit.label.inputs import InputError, read_originals
        from rewardkit.label.revise import revise_responses
        from rewardkit.label.run import Budget

        _check_common(concurrency, out, no_store, max_cost, price_in + price_out)
        rules = _constitution(constitution)
        unknown = sorted(set(principle or ()) - {p.name for p in rules.principles})
        if unknown:
            names = ", ".join(p.name for p in rules.principles)
            raise UserError(f"--principle {unknown[0]!r}: not in {constitution} (it has {names})")
        try:
            items = read_originals(responses)
        except InputError as exc:
            raise UserError(str(exc)) from None
        sink, done, _ = _sinks(out, no_store, source)
        budget = Budget(max_tokens_budget, max_cost, price_in, price_out)
        summary = _run(
            lambda client: revise_responses(
                items, client, rules, sink, principles=principle, budget=budget, done=done, source=source
            ),
            endpoint,
            model,
            api_key,
            concurrency=concurrency,
            timeout_s=timeout,
            max_retries=retries,
        )
        _report(summary, json_, "revised")
