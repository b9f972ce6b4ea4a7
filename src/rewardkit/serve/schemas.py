"""Request and response bodies of the reward service (the OpenAPI spec is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from rewardkit.data.types import Prompt


# Requests are strict: 0 is not false, "1" is not 1, unknown fields are errors.
STRICT = ConfigDict(extra="forbid", strict=True)


def _unicode(text: str) -> str:
    # JSON can carry a lone surrogate ("\ud800"); Python keeps it, the tokenizer then raises: a 422, not a 500
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode: a lone surrogate at character {exc.start}") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class Message(BaseModel):
    model_config = STRICT
    role: Literal["system", "user", "assistant", "tool"]
    content: Text


class PromptResponse(BaseModel):
    """A response to a prompt (text, or chat messages before the response)."""

    model_config = STRICT
    prompt: Text | list[Message] = ""
    response: Text

    def as_pair(self) -> tuple[Prompt, str]:
        prompt = self.prompt if isinstance(self.prompt, str) else [m.model_dump() for m in self.prompt]
        return prompt, self.response


class Chat(BaseModel):
    """A conversation whose last message is the assistant's response (the one scored)."""

    model_config = STRICT
    messages: list[Message] = Field(min_length=1)

    @model_validator(mode="after")
    def _ends_with_response(self) -> "Chat":
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be the assistant's response")
        return self

    def as_pair(self) -> tuple[Prompt, str]:
        return [m.model_dump() for m in self.messages[:-1]], self.messages[-1].content


ScoreInput = PromptResponse | Chat


class ScoreRequest(BaseModel):
    model_config = STRICT
    inputs: list[ScoreInput] = Field(min_length=1)
    normalize: bool = False


class ScoreResponse(BaseModel):
    scores: list[float]
    uncertainty: list[float] | None = Field(description="Ensemble std per input; null for a single model.")
    truncated: list[bool]
    model_version: str


class CompareRequest(BaseModel):
    model_config = STRICT
    prompt: Text | list[Message] = ""
    response_a: Text
    response_b: Text


class CompareResponse(BaseModel):
    p_a_better: float = Field(description="Calibrated P(a better than b) = sigmoid((r_a - r_b) / T).")
    scores: list[float] = Field(description="[score_a, score_b], raw.")
    model_version: str


class RankRequest(BaseModel):
    model_config = STRICT
    prompt: Text | list[Message] = ""
    responses: list[Text] = Field(min_length=1)
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

    model_config = ConfigDict(strict=True)  # OpenRLHF may add fields: ignore them

    query: list[Text] = Field(min_length=1)
    prompts: list[Text] | None = None
    labels: list[Any] | None = Field(default=None, description="Ignored (OpenRLHF sends its dataset labels).")


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float] | float | str] = Field(default_factory=dict)
    model_version: str


class ReloadRequest(BaseModel):
    model_config = STRICT
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
