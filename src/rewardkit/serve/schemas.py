"""Request and response bodies of the reward service (the OpenAPI spec is generated from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rewardkit.data.types import Prompt


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str


class ScoreInput(BaseModel):
    """Either ``prompt`` + ``response``, or ``messages`` ending in the assistant's response."""

    model_config = ConfigDict(extra="forbid")
    prompt: str | list[Message] | None = None
    response: str | None = None
    messages: list[Message] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> "ScoreInput":
        if self.messages is not None:
            if self.prompt is not None or self.response is not None:
                raise ValueError("give either messages, or prompt and response, not both")
            if self.messages[-1].role != "assistant":
                raise ValueError("the last message must be the assistant's response")
        elif self.response is None:
            raise ValueError("response is required (or give messages)")
        return self

    def as_pair(self) -> tuple[Prompt, str]:
        if self.messages is not None:
            return [m.model_dump() for m in self.messages[:-1]], self.messages[-1].content
        prompt = self.prompt if self.prompt is not None else ""
        return (prompt if isinstance(prompt, str) else [m.model_dump() for m in prompt]), self.response or ""


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[ScoreInput] = Field(min_length=1)
    normalize: bool = False


class ScoreResponse(BaseModel):
    scores: list[float]
    uncertainty: list[float] | None = Field(description="Ensemble std per input; null for a single model.")
    truncated: list[bool]
    model_version: str


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | list[Message] = ""
    response_a: str
    response_b: str


class CompareResponse(BaseModel):
    p_a_better: float = Field(description="Calibrated P(a better than b) = sigmoid((r_a - r_b) / T).")
    scores: list[float] = Field(description="[score_a, score_b], raw.")
    model_version: str


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str | list[Message] = ""
    responses: list[str] = Field(min_length=1)
    normalize: bool = False


class RankedResponse(BaseModel):
    index: int = Field(description="Position in the request's responses.")
    response: str
    score: float


class RankResponse(BaseModel):
    ranking: list[RankedResponse] = Field(description="Best first.")
    scores: list[float] = Field(description="Scores in request order.")
    model_version: str


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward model request: ``query`` holds prompt + response texts."""

    query: list[str] = Field(min_length=1)
    prompts: list[str] | None = None
    labels: list[str | float | int | None] | None = None


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float] | float | str] = Field(default_factory=dict)
    model_version: str


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_path: str | None = Field(default=None, description="Default: reload the configured model path.")


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None


class ErrorBody(BaseModel):
    error: str
    error_type: str


class InfoResponse(BaseModel):
    model: str
    model_version: str
    dtype: str
    max_length: int
    ensemble_size: int
    temperature: float
    limits: dict[str, float | int]


class HealthResponse(BaseModel):
    status: str
