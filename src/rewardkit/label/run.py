"""The AI-feedback labeling loop: each pair judged in both orders (position swap), optionally several samples
per order (self-consistency), verdicts combined, comparisons handed to a sink (the store, a JSONL file).

Per pair: 2 x ``samples`` requests, all in flight together under the client's concurrency limit. Each order's
verdicts are mapped back to the pair's own order (shown as B/A, "A" means response b) and each order's majority
taken. Both orders agree: that choice, with ``strength`` the share of all parsed verdicts that named it. They
disagree (position bias): a tie, or the pair is dropped (``on_disagreement``). An order without a single
parsable verdict makes the pair unparseable: counted, kept out, never guessed.

Stopping: the token or cost budget is checked before every request; once spent, no new request starts, those
in flight finish and are charged, and every pair finished so far reaches the sink: a clean stop. A judge that
is down, or answers garbage, stops the run the same way (``JudgeError``) after the client's retries.

Resuming: every pair has an idempotent key (judge model, constitution, prompt, responses); pairs whose key is
in ``done`` are skipped without a request, and the store ignores a key it already holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rewardkit.label.client import ChatAnswer, ChatClient, JudgeError
from rewardkit.label.constitution import Constitution
from rewardkit.label.verdict import Verdict, parse_verdict
from rewardkit.records import (
    Annotator,
    Comparison,
    PairwiseJudgement,
    Prompt,
    Response,
    content_hash,
    prompt_text,
)

ON_DISAGREEMENT = ("tie", "drop")
JUDGE_INSTRUCTIONS = (
    "You are an impartial judge comparing two AI assistant responses to the same conversation. "
    "Judge them by these principles:\n{rubric}\n\n"
    "Ignore the order in which the responses are shown and their length except where the principles make "
    "length matter. Answer with one JSON object and nothing else: "
    '{{"rationale": "<one or two sentences>", "verdict": "A" | "B" | "tie"}}'
)
JUDGE_QUESTION = (
    "[Conversation]\n{prompt}\n\n[Response A]\n{a}\n[End of Response A]\n\n[Response B]\n{b}\n"
    "[End of Response B]\n\nWhich response is better by the principles? Answer in JSON."
)


class BudgetExhausted(Exception):
    """The token or cost budget is spent: no new request may start."""


@dataclass
class Budget:
    """Tokens and money spent so far against optional limits; prices are USD per million tokens."""

    max_tokens: int | None = None
    max_cost: float | None = None
    price_in: float = 0.0
    price_out: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0

    @property
    def cost(self) -> float:
        return (self.tokens_in * self.price_in + self.tokens_out * self.price_out) / 1e6

    def check(self) -> None:
        if self.max_tokens is not None and self.tokens_in + self.tokens_out >= self.max_tokens:
            raise BudgetExhausted(f"token budget of {self.max_tokens:,} spent")
        if self.max_cost is not None and self.cost >= self.max_cost:
            raise BudgetExhausted(f"cost budget of ${self.max_cost:g} spent")

    def charge(self, answer: ChatAnswer) -> None:
        self.tokens_in += answer.prompt_tokens
        self.tokens_out += answer.completion_tokens
        self.requests += 1


async def ask(client: ChatClient, budget: Budget, messages: list[dict[str, str]], **options: Any) -> ChatAnswer:
    """One request, refused before it is sent when the budget is spent, charged when it comes back."""
    answer = await client.chat(messages, before_send=budget.check, **options)
    budget.charge(answer)
    return answer


@dataclass
class LabelConfig:
    samples: int = 1
    """Verdicts asked per order (self-consistency); each order's majority counts."""
    on_disagreement: str = "tie"
    """What a pair whose two orders disagree becomes: 'tie' (stored as a tie) or 'drop' (not stored)."""
    temperature: float | None = None
    """Sampling temperature; default 0 for one sample, 0.7 for several (identical samples add nothing)."""
    max_answer_tokens: int = 512
    source: str = "ai-feedback"
    """The source name stored on each comparison."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError(f"samples must be at least 1, got {self.samples}")
        if self.on_disagreement not in ON_DISAGREEMENT:
            raise ValueError(
                f"on_disagreement must be one of {', '.join(ON_DISAGREEMENT)}, got {self.on_disagreement!r}"
            )
        if self.temperature is None:
            self.temperature = 0.0 if self.samples == 1 else 0.7


@dataclass
class Pair:
    """An unlabelled pair: a prompt and two responses, in the order they will be stored."""

    prompt: Prompt
    a: Response
    b: Response
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    pairs: int = 0
    labelled: int = 0
    ties: int = 0
    dropped_disagreement: int = 0
    unparseable: int = 0
    skipped_done: int = 0
    not_reached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    requests: int = 0
    retries: int = 0
    stopped: str | None = None
    """Why the run ended early (a budget, the judge endpoint), None when every pair was tried."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_key(judge_model: str, constitution: Constitution, kind: str, *parts: Any) -> str:
    """The idempotent key of one AI label: the same judge, constitution and content give the same key."""
    return "ai:" + content_hash({"judge": judge_model, "constitution": constitution.key, "kind": kind, "of": parts})


def pair_key(judge_model: str, constitution: Constitution, pair: Pair) -> str:
    return label_key(judge_model, constitution, "pairwise", pair.prompt, pair.a.text, pair.b.text)


def judge_messages(constitution: Constitution, prompt: Prompt, first: str, second: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": JUDGE_INSTRUCTIONS.format(rubric=constitution.rubric_text())},
        {"role": "user", "content": JUDGE_QUESTION.format(prompt=prompt_text(prompt), a=first, b=second)},
    ]


def _majority(choices: list[str]) -> str:
    counts = Counter(choices).most_common()
    return counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else "tie"


def combine(
    forward: Sequence[Verdict | None], swapped: Sequence[Verdict | None], on_disagreement: str
) -> tuple[str, float | None]:
    """('a' | 'b' | 'tie', strength) or ('unparseable' | 'dropped', None) from the verdicts of the pair shown
    as A/B (``forward``) and as B/A (``swapped``), each in the order shown. A tie from disagreeing orders has
    strength None, like an agreed tie."""
    as_shown = {"A": "a", "B": "b", "tie": "tie"}
    flipped = {"A": "b", "B": "a", "tie": "tie"}
    first_votes = [as_shown[v.choice] for v in forward if v is not None]
    second_votes = [flipped[v.choice] for v in swapped if v is not None]
    if not first_votes or not second_votes:
        return "unparseable", None
    first, second = _majority(first_votes), _majority(second_votes)
    if first != second:
        return ("tie", None) if on_disagreement == "tie" else ("dropped", None)
    votes = first_votes + second_votes
    return first, None if first == "tie" else votes.count(first) / len(votes)


def orders_agree(forward: Sequence[Verdict | None], swapped: Sequence[Verdict | None]) -> bool:
    return combine(forward, swapped, "drop")[0] != "dropped"


async def judge_pair(
    client: ChatClient, budget: Budget, constitution: Constitution, config: LabelConfig, pair: Pair, key: str
) -> tuple[str, Comparison | None]:
    """(outcome, comparison): outcome 'a' | 'b' | 'tie' with the comparison, or 'dropped' | 'unparseable'."""
    options = {"temperature": config.temperature, "max_tokens": config.max_answer_tokens}
    shown = [(pair.a.text, pair.b.text)] * config.samples + [(pair.b.text, pair.a.text)] * config.samples
    answers = await asyncio.gather(
        *(ask(client, budget, judge_messages(constitution, pair.prompt, x, y), **options) for x, y in shown),
        return_exceptions=True,
    )
    for error in (JudgeError, BudgetExhausted, BaseException):  # the run-stopping kinds first
        found = next((a for a in answers if isinstance(a, error)), None)
        if found is not None:
            raise found
    verdicts = [parse_verdict(a.content) for a in answers]  # type: ignore[union-attr]
    forward, swapped = verdicts[: config.samples], verdicts[config.samples :]
    outcome, strength = combine(forward, swapped, config.on_disagreement)
    if outcome in ("unparseable", "dropped"):
        return outcome, None
    rationale = "\n".join(
        f"[{'A=a' if i < config.samples else 'A=b'}] {v.choice}: {v.rationale}" for i, v in enumerate(verdicts) if v
    )
    comparison = Comparison(
        prompt=pair.prompt,
        responses=(pair.a, pair.b),
        judgement=PairwiseJudgement(outcome, strength),  # type: ignore[arg-type]
        annotator=Annotator(client.model, "ai"),
        source=config.source,
        rubric=f"{constitution.name}@{constitution.key}",
        rationale=rationale,
        client_event_id=key,
        metadata={
            **pair.metadata,
            "judge": {
                "model": client.model,
                "constitution": constitution.name,
                "samples": config.samples,
                "verdicts": [None if v is None else v.choice for v in verdicts],
                "orders_agree": orders_agree(forward, swapped),
            },
        },
    )
    return outcome, comparison


Sink = Callable[[list[Comparison]], None]


async def drive(
    jobs: Iterable[tuple[str, Callable[[], Awaitable[tuple[str, Comparison | None]]]]],
    *,
    window: int,
    sink: Sink,
    on_outcome: Callable[[str], None],
    flush_every: int = 64,
) -> str | None:
    """Run ``(key, job)`` coroutines ``window`` at a time, hand finished comparisons to ``sink`` every
    ``flush_every`` and at the end (whatever ends it: the sink sees every finished comparison). Returns why it
    stopped early, None when every job ran."""
    pending: set[asyncio.Task[tuple[str, Comparison | None]]] = set()
    ready: list[Comparison] = []
    stopped: str | None = None
    iterator = iter(jobs)
    try:
        while True:
            while stopped is None and len(pending) < window:
                job = next(iterator, None)
                if job is None:
                    break
                pending.add(asyncio.ensure_future(job[1]()))
            if not pending:
                return stopped
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                try:
                    outcome, comparison = task.result()
                except BudgetExhausted as exc:
                    stopped = stopped or str(exc)
                    continue
                except JudgeError as exc:
                    stopped = str(exc)
                    for other in pending:
                        other.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    pending = set()
                    continue
                on_outcome(outcome)
                if comparison is not None:
                    ready.append(comparison)
            if len(ready) >= flush_every:
                sink(ready)
                ready = []
    finally:
        for task in pending:
            task.cancel()
        if ready:
            sink(ready)


async def label_pairs(
    pairs: Sequence[Pair],
    client: ChatClient,
    constitution: Constitution,
    config: LabelConfig,
    sink: Sink,
    *,
    budget: Budget | None = None,
    done: set[str] | frozenset[str] = frozenset(),
) -> RunSummary:
    """Label ``pairs`` with the judge behind ``client``; see the module docstring."""
    budget = budget or Budget()
    summary = RunSummary(pairs=len(pairs))
    todo = []
    for pair in pairs:
        key = pair_key(client.model, constitution, pair)
        if key in done:
            summary.skipped_done += 1
        else:
            todo.append((key, pair))
    finished = 0

    def count(outcome: str) -> None:
        nonlocal finished
        finished += 1
        if outcome == "dropped":
            summary.dropped_disagreement += 1
        elif outcome == "unparseable":
            summary.unparseable += 1
        else:
            summary.labelled += 1
            summary.ties += outcome == "tie"

    def job(key: str, pair: Pair) -> Callable[[], Awaitable[tuple[str, Comparison | None]]]:
        return lambda: judge_pair(client, budget, constitution, config, pair, key)

    # enough pairs in flight that the client's semaphore always has requests waiting
    window = 2 * -(-client.concurrency // (2 * config.samples)) + 1
    summary.stopped = await drive(((k, job(k, p)) for k, p in todo), window=window, sink=sink, on_outcome=count)
    summary.not_reached = len(todo) - finished
    summary.tokens_in, summary.tokens_out = budget.tokens_in, budget.tokens_out
    summary.cost, summary.requests, summary.retries = round(budget.cost, 6), budget.requests, client.retries
    return summary
