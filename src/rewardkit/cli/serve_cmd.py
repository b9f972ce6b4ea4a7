"""``rewardkit serve --model M``: the reward service (FastAPI + uvicorn) on RK_HOST:RK_PORT.

Every setting of ``rewardkit.serve.ServeSettings`` can also come from the environment (RK_API_KEYS,
RK_QUEUE_SIZE, RK_MAX_WAIT_MS, RK_HEADER_TIMEOUT_S, RK_SHUTDOWN_GRACE_S, ...). Reload the model without
downtime: ``kill -HUP <pid>`` or ``POST /admin/reload`` (each reload is logged). ``kill -TERM <pid>`` drains:
requests in flight finish or get a JSON 503 + Retry-After within RK_SHUTDOWN_GRACE_S.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError
from rewardkit.settings import DEVICE_HELP, DTYPE_HELP

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def settings_error(exc: Any) -> str:
    """A pydantic ValidationError of the settings as one line naming the option (``--queue-size``), not the
    field; the environment variable carries the same name (RK_QUEUE_SIZE)."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if not first["loc"]:  # a whole-model check: its message names the setting itself
        return message
    name = str(first["loc"][0])
    option = "--model" if name == "model_path" else "--" + name.replace("_", "-")
    return f"{option} (or RK_{name.upper()}): {message}"


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                "-m",
                help=(
                    "Reward model folder, HF id, or registry:NAME@ALIAS (served and followed: a promotion or rollback"
                    " reloads it). Default: RK_MODEL_PATH, else the bundled backbone."
                ),
            ),
        ] = None,
        host: Annotated[str | None, typer.Option(help="Bind address (default RK_HOST, 127.0.0.1).")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default RK_PORT, 8000).")] = None,
        queue_size: Annotated[
            int | None,
            typer.Option(help="Requests that may wait for the model before 429 (default RK_QUEUE_SIZE, else 256)."),
        ] = None,
        max_wait_ms: Annotated[
            float | None,
            typer.Option(
                help="Milliseconds the batcher waits to fill a batch once a request is waiting (default "
                "RK_MAX_WAIT_MS, else 2.0)."
            ),
        ] = None,
        dtype: Annotated[str | None, typer.Option(help=DTYPE_HELP + " (default: RK_DTYPE or auto).")] = None,
        threads: Annotated[
            int | None, typer.Option(help="torch threads (default RK_THREADS, else torch's choice).")
        ] = None,
        device: Annotated[str | None, typer.Option(help=DEVICE_HELP + " (default RK_DEVICE, else auto).")] = None,
        log_level: Annotated[str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS)}.")] = "info",
    ) -> None:
        """Serve a reward model over HTTP: /v1/score, /v1/compare, /v1/rank, /get_reward (OpenRLHF), /metrics."""
        from pydantic import ValidationError

        from rewardkit.serve import ServeSettings, create_app
        from rewardkit.serve.server import build_server

        if log_level not in LOG_LEVELS:
            raise UserError(f"--log-level: expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        overrides = {
            k: v
            for k, v in dict(
                model_path=model,
                host=host,
                port=port,
                queue_size=queue_size,
                max_wait_ms=max_wait_ms,
                dtype=dtype,
                threads=threads,
                device=device,
            ).items()
            if v is not None
        }
        try:
            settings = ServeSettings(**overrides)
        except ValidationError as exc:
            raise UserError(settings_error(exc)) from None
        from rewardkit.model.source import ModelNotFoundError, check_model_source
        from rewardkit.registry.follow import is_registry_ref, parse_registry_ref
        from rewardkit.registry.versions import RegistryError

        try:  # the model loads in the background once the server is up: a name that cannot work fails now
            if is_registry_ref(settings.model_path):
                parse_registry_ref(str(settings.model_path))  # resolved (and followed) by the service
            else:
                check_model_source(settings.model_path or "default")
        except (ModelNotFoundError, RegistryError) as exc:
            raise UserError(f"--model: {exc}") from None
        # header/body timeouts, a drain on SIGTERM (shutdown_grace_s) and the service's log lines (reloads)
        build_server(create_app(settings), settings, log_level=log_level).run()
