"""The constitutional mode: the judge critiques a response against a principle and rewrites it; the pair
(revision over original) is stored as a comparison whose attribute is the principle's name and whose
rationale is the critique (Constitutional AI's critique -> revision step, as preference data).

Two requests per (response, principle), the second after the first: the critique, then the revision given
the critique. A revision that comes back empty, or unchanged, stores nothing (counted as ``unchanged``).
Budget, concurrency, stopping and resuming are the labeling loop's (``rewardkit.label.run``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.label.client import ChatClient
from rewardkit.label.constitution import Constitution, Principle
from rewardkit.label.run import Budget, RunSummary, Sink, ask, drive, label_key
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Prompt, Response, prompt_text

CRITIC_INSTRUCTIONS = "You are a careful critic of AI assistant responses. {preamble}"
CRITIQUE_REQUEST = (
    "[Conversation]\n{prompt}\n\n[Response]\n{response}\n[End of Response]\n\n[Principle]\n{principle}\n\n{critique}"
)
REVISION_REQUEST = "{revision}\nAnswer with the rewritten response only, without any preamble or commentary."


@dataclass
class Original:
    """A response to critique and revise."""

    prompt: Prompt
    response: Response
    metadata: dict[str, Any] = field(default_factory=dict)


def revision_key(judge_model: str, constitution: Constitution, principle: Principle, item: Original) -> str:
    return label_key(judge_model, constitution, "revision", principle.name, item.prompt, item.response.text)


def _clean(text: str) -> str:
    """A revision without the wrappers models add ("Revised response:", surrounding quotes or fences)."""
    text = text.strip()
    for prefix in ("revised response:", "rewritten response:", "revision:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text.strip(text[0]).strip()
    return text


async def revise_one(
    client: ChatClient,
    budget: Budget,
    constitution: Constitution,
    principle: Principle,
    item: Original,
    key: str,
    *,
    source: str,
    max_answer_tokens: int,
) -> tuple[str, Comparison | None]:
    """('revised', comparison) or ('unchanged', None)."""
    messages = [
        {"role": "system", "content": CRITIC_INSTRUCTIONS.format(preamble=constitution.preamble).strip()},
        {
            "role": "user",
            "content": CRITIQUE_REQUEST.format(
                prompt=prompt_text(item.prompt),
                response=item.response.text,
                principle=principle.text,
                critique=principle.critique,
            ),
        },
    ]
    options = {"temperature": 0.0, "max_tokens": max_answer_tokens}
    critique = (await ask(client, budget, messages, **options)).content.strip()
    messages += [
        {"role": "assistant", "content": critique},
        {"role": "user", "content": REVISION_REQUEST.format(revision=principle.revision)},
    ]
    revised = _clean((await ask(client, budget, messages, **options)).content)
    if not revised or revised == item.response.text.strip():
        return "unchanged", None
    comparison = Comparison(
        prompt=item.prompt,
        responses=(Response(revised, model_name=client.model, metadata={"revision_of": "b"}), item.response),
        judgement=PairwiseJudgement("a"),
        annotator=Annotator(client.model, "ai"),
        source=source,
        attribute=principle.name,
        rubric=f"{constitution.name}@{constitution.key}",
        rationale=critique,
        client_event_id=key,
        metadata={**item.metadata, "constitutional": {"principle": principle.name, "model": client.model}},
    )
    return "revised", comparison


async def revise_responses(
    items: Sequence[Original],
    client: ChatClient,
    constitution: Constitution,
    sink: Sink,
    *,
    principles: Sequence[str] | None = None,
    budget: Budget | None = None,
    done: set[str] | frozenset[str] = frozenset(),
    source: str = "constitutional",
    max_answer_tokens: int = 1024,
) -> RunSummary:
    """Critique and revise every item against every principle (or those named); ``labelled`` counts the
    stored (revision, original) pairs, ``unparseable`` the revisions that came back empty or unchanged."""
    budget = budget or Budget()
    chosen = [p for p in constitution.principles if principles is None or p.name in principles]
    unknown = set(principles or ()) - {p.name for p in constitution.principles}
    if unknown:
        raise ValueError(f"no principle {sorted(unknown)[0]!r} in constitution {constitution.name!r}")
    summary = RunSummary(pairs=len(items) * len(chosen))
    todo = []
    for item in items:
        for principle in chosen:
            key = revision_key(client.model, constitution, principle, item)
            if key in done:
                summary.skipped_done += 1
            else:
                todo.append((key, principle, item))
    finished = 0

    def count(outcome: str) -> None:
        nonlocal finished
        finished += 1
        summary.labelled += outcome == "revised"
        summary.unparseable += outcome == "unchanged"

    def job(key: str, principle: Principle, item: Original) -> Callable[[], Awaitable[tuple[str, Comparison | None]]]:
        return lambda: revise_one(
            client, budget, constitution, principle, item, key, source=source, max_answer_tokens=max_answer_tokens
        )

    jobs = ((k, job(k, p, i)) for k, p, i in todo)
    summary.stopped = await drive(jobs, window=client.concurrency + 1, sink=sink, on_outcome=count)
    summary.not_reached = len(todo) - finished
    summary.tokens_in, summary.tokens_out = budget.tokens_in, budget.tokens_out
    summary.cost, summary.requests, summary.retries = round(budget.cost, 6), budget.requests, client.retries
    return summary
