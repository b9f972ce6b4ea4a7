"""Request and response bodies of the reward service (the OpenAPI spec is generated from these)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from rewardkit.model.step_aggregate import StepAggregate
from rewardkit.records import Prompt
from rewardkit.scoring.aggregate import Aggregate

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


# Unions are validated against ONE branch, picked from what the client sent: a plain union reports every
# branch's errors and the first is usually the wrong branch's ("PromptResponse.response: Field required"
# for a chat whose last message is not the assistant's). The tags below name branches; the 422 message
# leaves them out of the field path.
TEXT, MESSAGES, PROMPT_RESPONSE, CHAT = "text prompt", "message prompt", "prompt/response input", "chat input"
STEPS = "prompt/steps input"


def _prompt_kind(value: Any) -> str:
    return MESSAGES if isinstance(value, list) else TEXT


PromptField = Annotated[
    Union[Annotated[Text, Tag(TEXT)], Annotated[list[Message], Tag(MESSAGES)]], Discriminator(_prompt_kind)
]


class PromptResponse(BaseModel):
    """A response to a prompt (text, or chat messages before the response)."""

    model_config = STRICT
    prompt: PromptField = ""
    response: Text
    TEXT_FIELDS: ClassVar[tuple[str, str]] = ("prompt", "response")  # where as_pair's two texts are, for errors

    def as_pair(self) -> tuple[Prompt, str]:
        prompt = self.prompt if isinstance(self.prompt, str) else [m.model_dump() for m in self.prompt]
        return prompt, self.response


class Chat(BaseModel):
    """A conversation whose last message is the assistant's response (the one scored)."""

    model_config = STRICT
    # JSON Schema cannot point at an array's last item; `contains` states what it can (an assistant message is
    # there), the description the rest
    messages: list[Message] = Field(
        min_length=1,
        description="The conversation; the LAST message must be the assistant's (the response scored), else 422.",
        json_schema_extra={
            "contains": {"type": "object", "properties": {"role": {"const": "assistant"}}, "required": ["role"]}
        },
    )
    TEXT_FIELDS: ClassVar[tuple[str, str]] = ("messages[:-1]", "messages[-1].content")

    @model_validator(mode="after")
    def _ends_with_response(self) -> "Chat":
        if self.messages[-1].role != "assistant":
            raise ValueError("the last message must be the assistant's response")
        return self

    def as_pair(self) -> tuple[Prompt, str]:
        return [m.model_dump() for m in self.messages[:-1]], self.messages[-1].content


class PromptSteps(BaseModel):
    """A solution given as its steps, for a process reward model (each step scored; the score is their
    aggregate). An outcome model answers 422."""

    model_config = STRICT
    prompt: PromptField = ""
    steps: list[Text] = Field(min_length=1, description="The solution's steps, in order; none may be blank.")
    TEXT_FIELDS: ClassVar[tuple[str, str]] = ("prompt", "steps")

    def as_pair(self) -> tuple[Prompt, Any]:
        prompt = self.prompt if isinstance(self.prompt, str) else [m.model_dump() for m in self.prompt]
        return prompt, list(self.steps)


def _input_kind(value: Any) -> str:
    if isinstance(value, PromptSteps) or (isinstance(value, dict) and "steps" in value):
        return STEPS
    return CHAT if isinstance(value, Chat) or (isinstance(value, dict) and "messages" in value) else PROMPT_RESPONSE


ScoreInput = Annotated[
    Union[
        Annotated[PromptResponse, Tag(PROMPT_RESPONSE)], Annotated[Chat, Tag(CHAT)], Annotated[PromptSteps, Tag(STEPS)]
    ],
    Discriminator(_input_kind),
]


def step_aggregate_field() -> Any:
    return Field(
        default=None,
        description="Process reward models: a solution's score from its step scores: min, product, mean or last. "
        "Default: the model card's.",
    )


# Conservative ensemble rewards (rewardkit.scoring.aggregate), per request; unset: the deployment's
# RK_REWARD_AGGREGATE / RK_UWO_LAMBDA. A single model's score is the same under all three
def aggregate_field() -> Any:
    return Field(
        default=None,
        description="How an ensemble's score combines its members: mean, uwo (mean - uwo_lambda * std) or wco (the "
        "lowest member, each standardized). Default: the deployment's (RK_REWARD_AGGREGATE).",
    )


def uwo_lambda_field() -> Any:
    return Field(
        default=None, ge=0, allow_inf_nan=False, description="lambda of uwo. Default: the deployment's (RK_UWO_LAMBDA)."
    )


class ScoreRequest(BaseModel):
    model_config = STRICT
    inputs: list[ScoreInput] = Field(min_length=1)
    normalize: bool = False
    aggregate: Aggregate | None = aggregate_field()
    uwo_lambda: float | None = uwo_lambda_field()
    step_aggregate: StepAggregate | None = step_aggregate_field()


class ScoreResponse(BaseModel):
    scores: list[float]
    uncertainty: list[float] | None = Field(description="Ensemble std per input; null for a single model.")
    # no `aggregate` here: rewardkit.client builds Scores(**body), so a new key would break deployed clients
    # (step_scores is sent only by a process reward model: the route excludes unset fields)
    truncated: list[bool]
    model_version: str
    score_ids: list[str] | None = Field(
        default=None, description="One id per score, to cite in /v1/feedback (null when the score log is off)."
    )
    step_scores: list[list[float | None]] | None = Field(
        default=None,
        description="Process reward models only (the key is absent otherwise): each input's per-step scores, "
        "sigmoid of the logit at each step's token (null: a step dropped by truncation); scores are their "
        "step_aggregate.",
    )


class CompareRequest(BaseModel):
    model_config = STRICT
    prompt: PromptField = ""
    response_a: Text
    response_b: Text


class CompareResponse(BaseModel):
    p_a_better: float = Field(description="Calibrated P(a better than b) = sigmoid((r_a - r_b) / T).")
    scores: list[float] = Field(description="[score_a, score_b], raw.")
    model_version: str
    score_ids: list[str] | None = Field(
        default=None, description="One id per score, to cite in /v1/feedback (null when the score log is off)."
    )


class RankRequest(BaseModel):
    model_config = STRICT
    prompt: PromptField = ""
    responses: list[Text] = Field(min_length=1)
    normalize: bool = False
    step_aggregate: StepAggregate | None = step_aggregate_field()


class RankedResponse(BaseModel):
    index: int = Field(description="Position in the request's responses.")
    response: str
    score: float


class RankResponse(BaseModel):
    ranking: list[RankedResponse] = Field(description="Best first.")
    scores: list[float] = Field(description="Scores in request order.")
    model_version: str
    score_ids: list[str] | None = Field(
        default=None, description="One id per score, to cite in /v1/feedback (null when the score log is off)."
    )
    step_scores: list[list[float | None]] | None = Field(
        default=None,
        description="Process reward models only (the key is absent otherwise): each input's per-step scores, "
        "sigmoid of the logit at each step's token (null: a step dropped by truncation); scores are their "
        "step_aggregate.",
    )


class RewardRequest(BaseModel):
    """OpenRLHF's remote reward model request: ``query`` holds prompt + response texts."""

    model_config = ConfigDict(strict=True)  # OpenRLHF may add fields: ignore them

    # may be empty: OpenRLHF splits a batch evenly over its --remote_rm_url servers, so a small batch
    # sends some of them an empty slice (and expects empty lists back)
    query: list[Text] = Field(description="Prompt + response texts, as the policy decoded them (special tokens kept).")
    # JSON Schema cannot compare two arrays' lengths: stated here, checked by the route (422)
    prompts: list[Text] | None = Field(
        default=None,
        description="prompts[i] is query[i]'s prompt: as many items as query, else 422. Default: no prompts.",
    )
    labels: list[Any] | None = Field(default=None, description="Ignored (OpenRLHF sends its dataset labels).")
    aggregate: Aggregate | None = aggregate_field()
    uwo_lambda: float | None = uwo_lambda_field()
    # KL-shaped per-token rewards (rewardkit.rl.kl): sent by a PPO trainer that wants them computed here
    logprobs: list[list[float]] | None = Field(
        default=None,
        description="logprobs[i]: the policy's log-prob of each response token of query[i]; with ref_logprobs and "
        "kl_beta the response adds token_rewards.",
    )
    ref_logprobs: list[list[float]] | None = Field(
        default=None, description="The reference model's log-probs of the same tokens, as logprobs."
    )
    kl_beta: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="KL coefficient; required with logprobs."
    )
    kl_estimator: Literal["k1", "k2", "k3"] = Field(default="k1", description="Per-token KL estimator.")


class RewardResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float] | float | str] = Field(default_factory=dict)
    aggregate: str = Field(default="mean", description="The aggregate the rewards are (mean, uwo or wco).")
    token_rewards: list[list[float]] | None = Field(
        default=None,
        description="With logprobs: per query, -kl_beta * KL_t at every response token, the reward added at the last.",
    )
    model_version: str
    score_ids: list[str] | None = Field(
        default=None, description="One id per score, to cite in /v1/feedback (null when the score log is off)."
    )


class ReloadRequest(BaseModel):
    model_config = STRICT
    # whether a path loads depends on the server's disk: no schema can say; stated here, answered 422 reload_failed
    model_path: str | None = Field(
        default=None,
        description=(
            "A model the server can load: a folder on the server with config.json (a rewardkit, ensemble or HF reward"
            " model folder) or a hub id it can fetch; else 422 reload_failed and the old model keeps serving."
            " Default (null or empty): reload the configured model path."
        ),
    )


class ReloadResponse(BaseModel):
    model_version: str
    previous_version: str | None


def validation_message(errors: Sequence[Any], most: int = 3) -> str:
    """One line for a 422 from pydantic's errors: up to ``most`` of them, each as ``field.path: reason``
    (``inputs[1].respons: Extra inputs are not permitted``), without the union tags and the 'body' prefix."""
    parts = []
    for err in list(errors)[:most]:
        loc = [x for x in err.get("loc", ()) if x not in (TEXT, MESSAGES, PROMPT_RESPONSE, CHAT)]
        if len(loc) > 1 and loc[0] == "body":
            loc = loc[1:]
        path = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".")
        reason = str(err.get("msg", "invalid input")).removeprefix("Value error, ")  # our validators' own words
        parts.append(f"{path or 'body'}: {reason}")
    more = len(errors) - most
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") if parts else "invalid input"


class ErrorBody(BaseModel):
    error: str
    error_type: str


class InfoResponse(BaseModel):
    model: str
    model_version: str
    dtype: str
    precision: str | None = Field(
        description="What the scorer chose to compute in (bf16, fp32, int8); null if unknown."
    )
    max_length: int
    ensemble_size: int
    temperature: float
    limits: dict[str, float | int]
    registry: str | None = Field(default=None, description="registry:NAME@ALIAS when serving by alias, else null.")
    registry_version: int | None = Field(default=None, description="The registry version the alias points to.")


class HealthResponse(BaseModel):
    status: str
