"""Serving settings: the deployment ``Settings`` (host, port, model, keys; prefix ``RK_``) plus the
service's limits and batching knobs, also read from the environment (``RK_QUEUE_SIZE=512`` etc.)."""

from __future__ import annotations

from pydantic import Field, model_validator

from rewardkit.scoring.aggregate import DEFAULT_UWO_LAMBDA, Aggregate
from rewardkit.serve.openrlhf import DEFAULT_STRIP_TOKENS, PromptFormat
from rewardkit.settings import DEVICE_HELP, DEVICE_NAME, DTYPE_HELP, SCORE_DTYPES, Settings

SMALL_BODY_BYTES = 65_536
"""The body limit of the routes that take little or nothing (``/admin/reload``'s path, the GET routes)."""


class ServeSettings(Settings):
    """Everything ``create_app`` needs. Defaults suit a CPU box; raise token_budget on a GPU."""

    alias_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="With --model registry:NAME@ALIAS: seconds between reads of the alias (a move reloads the model).",
    )
    max_inputs_per_request: int = Field(default=256, ge=1, description="Inputs per request; more is 413.")
    max_chars_per_input: int = Field(
        default=32_000, ge=1, description="Characters per prompt or response; more is 413."
    )
    max_body_bytes: int = Field(default=4_000_000, ge=1024, description="Request body size; more is 413.")
    queue_size: int = Field(
        default=256, ge=1, description="Requests waiting for the model; beyond it, 429 + Retry-After."
    )
    max_wait_ms: float = Field(
        default=2.0, ge=0, description="How long the batcher waits to fill a batch once it has one request."
    )
    token_budget: int = Field(
        default=2048,
        ge=64,
        description="Tokens (rows x padded width) per model batch (CPU: 1-4K is fastest per token; raise on a GPU).",
    )
    max_batch_rows: int = Field(default=512, ge=1, description="Rows merged into one scoring call at most.")
    max_length: int | None = Field(default=None, ge=8, description="Token limit per row; default the model card's.")
    dtype: str = Field(default="auto", description=DTYPE_HELP + ".")
    threads: int | None = Field(default=None, ge=1, description="torch threads; default torch's choice.")
    device: str = Field(default="auto", description=DEVICE_HELP + ".")
    retry_after_s: int = Field(
        default=1, ge=1, description="Retry-After seconds sent with 429, and with 503 while the model loads."
    )
    # OpenRLHF posts a whole rollout batch (rollout batch / reward servers) in one /get_reward call
    get_reward_max_inputs: int = Field(
        default=8192,
        ge=1,
        description="Queries per /get_reward request (OpenRLHF sends a rollout batch at once); more is 413.",
    )
    get_reward_max_body_bytes: int = Field(
        default=128_000_000, ge=1024, description="/get_reward body size; more is 413."
    )
    max_inflight_body_bytes: int = Field(
        default=256_000_000,
        ge=1024,
        description=(
            "Request body bytes being read or held by requests in flight, all routes together; a request that would"
            " pass it is 429 + Retry-After (a parsed body takes about twice its bytes)."
        ),
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a connection may take to send a request's headers (from connect, or from the first byte of the"
            " next request); then 408 and closed."
        ),
    )
    body_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request may take to send its whole body once its headers arrived; then 408 and closed.",
    )
    shutdown_grace_s: float = Field(
        default=10.0,
        gt=0,
        description=(
            "On SIGTERM: seconds to finish the requests in flight; what is still waiting then is answered 503 +"
            " Retry-After (the process exits at most 2 s later)."
        ),
    )
    strip_tokens: list[str] = Field(
        default=list(DEFAULT_STRIP_TOKENS),
        description=(
            "/get_reward: pad/EOS strings stripped from both ends of each query (OpenRLHF keeps special tokens"
            " when it decodes)."
        ),
    )
    get_reward_prompt_format: PromptFormat = Field(
        default="auto",
        description=(
            "/get_reward: auto reads a prompt sent in `prompts` and written in a common chat template (ChatML, "
            "Llama 2/3, Mistral, Gemma, Phi-3, Zephyr) back into messages, so the model formats them its own way,"
            " and scores a query without `prompts` as text; conversation also reads a query without `prompts` as "
            "a conversation ending with the response (the policy can then write turn markers in its response and "
            "choose the prompt it is scored against); text scores the templated string as it is (for a model "
            "trained on such strings)."
        ),
    )

    # The production loop: feedback and the score log (both need the database of RK_DATABASE_URL / RK_HOME)
    feedback_keys: list[str] = Field(
        default_factory=list,
        description=(
            "Bearer keys for POST /v1/feedback. Unset with api_keys set: feedback is refused (a client that may score"
            " may not write data unless given a feedback key); unset with no keys at all: open, like every route."
        ),
    )
    feedback_max_items: int = Field(default=1000, ge=1, description="Items per /v1/feedback request; more is 413.")
    feedback_max_body_bytes: int = Field(default=16_000_000, ge=1024, description="/v1/feedback body size; 413 over.")
    feedback_max_wait_ms: float = Field(
        default=2.0, ge=0, description="How long a group commit waits for more feedback once requests run concurrently."
    )
    score_log: bool = Field(default=True, description="Log served scores (aggregates of all, a sample in full).")
    log_sample_rate: float | dict[str, float] = Field(
        default_factory=lambda: {"/get_reward": 0.01},
        description=(
            'Share of served scores logged in full, per route (JSON: {"/get_reward": 0.01}) or one number for all;'
            " routes not named: 1.0. Aggregates count every score whatever the rate."
        ),
    )
    log_buffer_size: int = Field(
        default=20_000, ge=1, description="Score records held for the next write; beyond, dropped."
    )
    log_flush_interval_s: float = Field(default=1.0, gt=0, description="Seconds between score-log writes.")
    reward_aggregate: Aggregate = Field(
        default="mean",
        description="How an ensemble's served score combines its members when a request does not say: mean, uwo "
        "(mean - uwo_lambda * std) or wco (the lowest standardized member); see docs/policy-rewards.md.",
    )
    uwo_lambda: float = Field(
        default=DEFAULT_UWO_LAMBDA, ge=0, allow_inf_nan=False, description="lambda of uwo when a request does not say."
    )
    uncertain_std: float = Field(
        default=0.5, ge=0, description="An ensemble std at or over this many reward stds counts as uncertain."
    )

    # Routing to human review (docs/review.md): uncertain scores become review-queue items
    review_routing: bool = Field(
        default=False, description="Route uncertain /v1/compare answers and ensemble scores to the review queue."
    )
    review_p_band: tuple[float, float] = Field(
        default=(0.4, 0.6), description="/v1/compare answers whose calibrated P(a > b) lies in this band are queued."
    )
    review_std_band: tuple[float, float] = Field(
        default=(0.5, 1e9),
        description="Ensemble scores whose std, in reward stds, lies in this band are queued (paired with a sibling).",
    )
    review_sample_rate: float = Field(default=1.0, ge=0, le=1, description="Share of in-band cases offered.")
    review_max_per_minute: int = Field(default=60, ge=1, description="Items queued per minute at most (per process).")
    review_labels_needed: int = Field(default=2, ge=1, description="Labels each routed item needs (overlap k).")

    def sample_rates(self) -> tuple[dict[str, float], float]:
        """(per-route rates, the default rate) from ``log_sample_rate``."""
        if isinstance(self.log_sample_rate, dict):
            return dict(self.log_sample_rate), 1.0
        return {}, float(self.log_sample_rate)

    def body_limits(self) -> dict[str, int]:
        """The body size each route takes (a route not named: ``SMALL_BODY_BYTES``)."""
        return {
            "/v1/score": self.max_body_bytes,
            "/v1/compare": self.max_body_bytes,
            "/v1/rank": self.max_body_bytes,
            "/get_reward": self.get_reward_max_body_bytes,
            "/v1/feedback": self.feedback_max_body_bytes,
        }

    def limits(self) -> dict[str, float | int]:
        """The limits a client may need to know (``/info`` publishes them)."""
        return {
            "max_inputs_per_request": self.max_inputs_per_request,
            "max_chars_per_input": self.max_chars_per_input,
            "max_body_bytes": self.max_body_bytes,
            "queue_size": self.queue_size,
            "max_wait_ms": self.max_wait_ms,
            "token_budget": self.token_budget,
            "get_reward_max_inputs": self.get_reward_max_inputs,
            "get_reward_max_body_bytes": self.get_reward_max_body_bytes,
            "max_inflight_body_bytes": self.max_inflight_body_bytes,
            "header_timeout_s": self.header_timeout_s,
            "body_timeout_s": self.body_timeout_s,
            "feedback_max_items": self.feedback_max_items,
            "feedback_max_body_bytes": self.feedback_max_body_bytes,
        }

    @model_validator(mode="after")
    def _check(self) -> "ServeSettings":
        largest = max(self.max_body_bytes, self.get_reward_max_body_bytes, self.feedback_max_body_bytes)
        if self.max_inflight_body_bytes < largest:  # else a request within its route's limit could never pass
            raise ValueError(
                f"max_inflight_body_bytes (RK_MAX_INFLIGHT_BODY_BYTES, {self.max_inflight_body_bytes}) must be at "
                f"least the largest body limit ({largest})"
            )
        rates = self.log_sample_rate.values() if isinstance(self.log_sample_rate, dict) else [self.log_sample_rate]
        if any(not 0.0 <= r <= 1.0 for r in rates):
            raise ValueError(
                f"log_sample_rate (RK_LOG_SAMPLE_RATE) must be between 0 and 1, got {self.log_sample_rate}"
            )
        if self.dtype not in SCORE_DTYPES:
            raise ValueError(f"--dtype (or RK_DTYPE) must be one of {', '.join(SCORE_DTYPES)}, got {self.dtype!r}")
        if not DEVICE_NAME.fullmatch(self.device):  # a typo fails at start, not as 503s later
            raise ValueError(f"--device (or RK_DEVICE) must be {DEVICE_HELP}, got {self.device!r}")
        return self
