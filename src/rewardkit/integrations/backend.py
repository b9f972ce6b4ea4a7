"""Where an RL adapter gets its scores: a local model (the batch scorer) or a running reward service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from rewardkit.records import Prompt


class RewardBackend(Protocol):
    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]: ...


class LocalBackend:
    """Scores in this process with ``rewardkit.scoring.scorer.load_scorer(model)`` (loaded on first use; a pickled
    copy, e.g. in another worker process, loads its own). ``scorer_options`` are load_scorer's, ``aggregate`` and
    ``uwo_lambda`` (an ensemble's mean, uwo or wco) among them."""

    def __init__(self, model: str, normalize: bool = False, **scorer_options: object) -> None:
        self.model, self.normalize, self.options = model, normalize, scorer_options
        self._scorer = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_scorer": None}

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if self._scorer is None:
            from rewardkit.scoring.scorer import load_scorer

            self._scorer = load_scorer(self.model, **self.options)  # type: ignore[arg-type]
        res = self._scorer.score(prompts, responses)
        return [float(x) for x in (res.normalized if self.normalize else res.raw)]


# The body limit assumed when the service does not publish one in /info (a rewardkit service does): under
# the usual 1 MiB default of reverse proxies (nginx client_max_body_size)
DEFAULT_MAX_BODY_BYTES = 1_000_000
BODY_OVERHEAD = 64  # bytes of '{"inputs": [...], "normalize": false}' around the items, with room to spare


def item_bytes(prompt: Prompt, response: str) -> int:
    """An upper bound of the JSON bytes of one ``{"prompt", "response"}`` item in a request body, the comma
    after it included: json.dumps' ASCII escapes (``\\uXXXX``, 6 bytes a character) are never shorter than
    the UTF-8 an HTTP client may send instead."""
    return len(json.dumps({"prompt": prompt, "response": response})) + 2


def plan_requests(sizes: Sequence[int], max_items: int, max_bytes: int) -> list[range]:
    """Consecutive index ranges covering ``sizes`` (item byte counts), each of at most ``max_items`` items
    and at most ``max_bytes`` bytes with BODY_OVERHEAD, in order. An item too large for any request goes
    alone (the service then names the problem)."""
    out: list[range] = []
    start, total = 0, BODY_OVERHEAD
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_items or total + size > max_bytes):
            out.append(range(start, i))
            start, total = i, BODY_OVERHEAD
        total += size
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


class RemoteBackend:
    """Scores through a running ``rewardkit serve``, in requests within the service's limits on inputs per
    request and body size (both read from its /info on first use; a long-completion GRPO batch is split by
    size, not only by count). The HTTP client is made on first use and not pickled."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        normalize: bool = False,
        chunk: int | None = None,
        max_body_bytes: int | None = None,
        aggregate: str | None = None,
        uwo_lambda: float | None = None,
    ) -> None:
        self.url, self.api_key, self.normalize = url, api_key, normalize
        self.aggregate, self.uwo_lambda = aggregate, uwo_lambda  # None: the service's default
        self.chunk, self.max_body_bytes = chunk, max_body_bytes
        self._client: Any = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_client": None}

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if self._client is None:
            from rewardkit.client import Client

            self._client = Client(self.url, api_key=self.api_key)
        if self.chunk is None or self.max_body_bytes is None:
            limits = self._client.info().get("limits", {})
            self.chunk = self.chunk or int(limits.get("max_inputs_per_request", 64))
            self.max_body_bytes = self.max_body_bytes or int(limits.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES))
        sizes = [item_bytes(p, r) for p, r in zip(prompts, responses)]
        out: list[float] = []
        for part in plan_requests(sizes, self.chunk, self.max_body_bytes):
            items = [(prompts[i], responses[i]) for i in part]
            out += self._client.score(
                items, normalize=self.normalize, aggregate=self.aggregate, uwo_lambda=self.uwo_lambda
            ).scores
        return out


def make_backend(
    model: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    normalize: bool = False,
    aggregate: str | None = None,
    uwo_lambda: float | None = None,
) -> RewardBackend:
    """``aggregate``/``uwo_lambda``: an ensemble's mean, uwo (mean - lambda * std) or wco (lowest member); unset:
    the mean for a local model, the service's default (RK_REWARD_AGGREGATE) for a service."""
    from rewardkit.scoring.aggregate import DEFAULT_UWO_LAMBDA, check_aggregate

    if (model is None) == (url is None):
        raise ValueError("give exactly one of model (a local reward model) or url (a rewardkit service)")
    check_aggregate(aggregate or "mean", DEFAULT_UWO_LAMBDA if uwo_lambda is None else uwo_lambda)  # fail at setup
    if model is not None:
        local = {
            "aggregate": aggregate or "mean",
            "uwo_lambda": DEFAULT_UWO_LAMBDA if uwo_lambda is None else uwo_lambda,
        }
        return LocalBackend(model, normalize, **local)
    return RemoteBackend(url, api_key, normalize, aggregate=aggregate, uwo_lambda=uwo_lambda)  # type: ignore[arg-type]
