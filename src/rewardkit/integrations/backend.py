"""Where an RL adapter gets its scores: a local model (the batch scorer) or a running reward service."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from rewardkit.data.types import Prompt


class RewardBackend(Protocol):
    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]: ...


class LocalBackend:
    """Scores in this process with ``rewardkit.score.load_scorer(model)`` (loaded on first use; a pickled
    copy, e.g. in another worker process, loads its own)."""

    def __init__(self, model: str, normalize: bool = False, **scorer_options: object) -> None:
        self.model, self.normalize, self.options = model, normalize, scorer_options
        self._scorer = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_scorer": None}

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if self._scorer is None:
            from rewardkit.score import load_scorer

            self._scorer = load_scorer(self.model, **self.options)  # type: ignore[arg-type]
        res = self._scorer.score(prompts, responses)
        return [float(x) for x in (res.normalized if self.normalize else res.raw)]


class RemoteBackend:
    """Scores through a running ``rewardkit serve``, in requests of at most the service's per-request limit
    (read from its /info on first use). The HTTP client is made on first use and not pickled."""

    def __init__(self, url: str, api_key: str | None = None, normalize: bool = False, chunk: int | None = None) -> None:
        self.url, self.api_key, self.normalize, self.chunk = url, api_key, normalize, chunk
        self._client: Any = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_client": None}

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[float]:
        if self._client is None:
            from rewardkit.client import Client

            self._client = Client(self.url, api_key=self.api_key)
        if self.chunk is None:
            self.chunk = int(self._client.info()["limits"]["max_inputs_per_request"])
        out: list[float] = []
        for i in range(0, len(responses), self.chunk):
            items = list(zip(prompts[i:i + self.chunk], responses[i:i + self.chunk]))
            out += self._client.score(items, normalize=self.normalize).scores
        return out


def make_backend(model: str | None = None, url: str | None = None, api_key: str | None = None, normalize: bool = False) -> RewardBackend:
    if (model is None) == (url is None):
        raise ValueError("give exactly one of model (a local reward model) or url (a rewardkit service)")
    return LocalBackend(model, normalize) if model is not None else RemoteBackend(url, api_key, normalize)  # type: ignore[arg-type]
