"""The micro-batcher: concurrent requests merged into one scoring call, model work off the event loop.

Each request becomes a ``Job`` (its rows + the scorer it started with) in a bounded queue; a full queue
raises ``Overloaded`` (the route answers 429 + Retry-After). One worker task takes the first waiting job,
gathers more for at most ``max_wait_ms`` (or until the row/token caps), and runs each scorer's rows in ONE
``BatchScorer.score`` call on a single model thread (which packs them into token-budget batches). Jobs are
grouped by scorer, so requests in flight during a reload finish on the model they started with.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rewardkit.model.formatting import ChatTemplateError
from rewardkit.records import Prompt
from rewardkit.scoring.scorer import BatchScorer, ScoreResult


class Overloaded(Exception):
    """The queue is full."""


class ShuttingDown(Exception):
    """The server stopped before this request was scored."""


@dataclass
class Job:
    scorer: BatchScorer
    prompts: list[Prompt]
    responses: list[str]
    future: asyncio.Future[ScoreResult]
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def est_tokens(self) -> int:
        # a cheap upper-ish estimate (~4 chars per token) used only to stop gathering, not for packing
        chars = sum(len(r) + (len(p) if isinstance(p, str) else 200) for p, r in zip(self.prompts, self.responses))
        return min(chars // 4 + 8 * len(self.responses), self.scorer.max_length * len(self.responses))


class MicroBatcher:
    def __init__(
        self, queue_size: int, max_wait_ms: float, max_rows: int, token_budget: int, metrics: Any = None
    ) -> None:
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=queue_size)
        self.max_wait = max_wait_ms / 1000.0
        self.max_rows = max_rows
        self.token_budget = token_budget
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rk-model")
        self._task: asyncio.Task[None] | None = None
        self._taken: list[Job] = []  # the jobs the worker has taken off the queue and not answered yet
        self.closed = False  # past the shutdown deadline: nothing more is scored
        self._deadline: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def close_at(self, deadline: float) -> None:
        """Shutting down: what is queued is still scored until ``deadline`` (event-loop time); then every request
        still waiting or being scored is answered ``ShuttingDown``, so it gets a JSON 503 while the server
        still waits for it (uvicorn cancels what is left at the end of its grace period: a plain-text 500)."""
        self._deadline = asyncio.get_running_loop().call_at(deadline, self._abandon)

    def _abandon(self) -> None:
        self.closed = True
        waiting = list(self._taken)
        while not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        for job in waiting:  # the model thread may still finish a batch: its result finds the future done
            _settle(job, error=ShuttingDown())

    async def stop(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)
        waiting = list(self._taken)
        while not self.queue.empty():
            waiting.append(self.queue.get_nowait())
        for job in waiting:  # taken or still queued: every request gets an answer, not a hang
            _settle(job, error=ShuttingDown())

    async def submit(self, scorer: BatchScorer, prompts: list[Prompt], responses: list[str]) -> ScoreResult:
        """Queue rows for ``scorer`` and wait for their scores; ``Overloaded`` when the queue is full,
        ``ShuttingDown`` past the shutdown deadline."""
        if self.closed:
            raise ShuttingDown
        job = Job(scorer, prompts, responses, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded from None
        if self.metrics is not None:
            self.metrics.queue_size.set(self.queue.qsize())
        return await job.future

    async def _gather(self) -> list[Job]:
        loop = asyncio.get_running_loop()
        jobs = [await self.queue.get()]
        self._taken = jobs
        rows, tokens = len(jobs[0].responses), jobs[0].est_tokens
        deadline = loop.time() + self.max_wait
        while rows < self.max_rows and tokens < self.token_budget:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            jobs.append(job)
            rows += len(job.responses)
            tokens += job.est_tokens
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if self.metrics is not None:
                self.metrics.queue_size.set(self.queue.qsize())
                now = time.perf_counter()
                for job in jobs:
                    self.metrics.queue_time.observe(now - job.enqueued)
            groups: dict[int, list[Job]] = {}
            for job in jobs:
                groups.setdefault(id(job.scorer), []).append(job)
            for group in groups.values():
                live = [j for j in group if not j.future.done()]  # a client that hung up is skipped
                if not live:
                    continue
                try:
                    results = await loop.run_in_executor(self.executor, self._score_group, live)
                except Exception as exc:
                    await self._score_apart(live, exc)
                    continue
                for job, result in zip(live, results):
                    _settle(job, result)

    async def _score_apart(self, jobs: list[Job], exc: Exception) -> None:
        """One request's failure must not fail the others merged with it (the worker keeps going). A chat
        template's refusal names its row: that request gets it (its row counted within the request) and the
        others are scored together again. Any other failure: each request alone, so only the one that breaks
        the model gets the error."""
        loop = asyncio.get_running_loop()
        while len(jobs) > 1 and isinstance(exc, ChatTemplateError) and exc.row is not None:
            refused, row = _job_at(jobs, exc.row)
            _settle(refused, error=ChatTemplateError(exc.reason, row))
            jobs = [j for j in jobs if j is not refused]
            try:
                results = await loop.run_in_executor(self.executor, self._score_group, jobs)
            except Exception as again:
                exc = again
                continue
            for job, result in zip(jobs, results):
                _settle(job, result)
            return
        if len(jobs) == 1:  # exc came from scoring this request's rows alone
            _settle(jobs[0], error=exc)
            return
        for job in jobs:
            try:
                [result] = await loop.run_in_executor(self.executor, self._score_group, [job])
            except Exception as alone:
                _settle(job, error=alone)
            else:
                _settle(job, result)

    def _score_group(self, jobs: list[Job]) -> list[ScoreResult]:
        """One scoring call over all jobs' rows (runs on the model thread), split back per job."""
        scorer = jobs[0].scorer
        prompts = [p for j in jobs for p in j.prompts]
        responses = [r for j in jobs for r in j.responses]
        enc = scorer.encode(prompts, responses)
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(responses))
            self.metrics.batch_tokens.observe(sum(enc.lengths))
        # (members, n); a process reward model's step scores per row beside its aggregates
        raw, steps = scorer.score_steps_encoded(enc) if scorer.is_prm else (scorer.score_encoded(enc), None)
        out, start = [], 0
        for job in jobs:
            n = len(job.responses)
            part = None if steps is None else steps[start : start + n]
            out.append(scorer.result(raw[:, start : start + n], enc.truncated[start : start + n], step_scores=part))
            start += n
        return out


def _job_at(jobs: list[Job], row: int) -> tuple[Job, int]:
    """The job holding row ``row`` of the rows of ``jobs`` put together, and the row's index within it."""
    for job in jobs:
        if row < len(job.responses):
            return job, row
        row -= len(job.responses)
    raise IndexError(f"row {row} past the jobs' rows")


def _settle(job: Job, result: ScoreResult | None = None, error: Exception | None = None) -> None:
    """Answer a job once (a client that hung up has a done future already)."""
    if job.future.done():
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)  # type: ignore[arg-type]
