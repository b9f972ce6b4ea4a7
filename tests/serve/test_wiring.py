"""The app's wiring, in process (no server: FastAPI's TestClient, dependencies swapped with
``app.dependency_overrides``): routers at module level, the gate's key table in sync with the routes, /info's
fields, the OpenAPI spec stating the rules a client must know, and the start-up warning for an open server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rewardkit.serve import ServeSettings, create_app
from rewardkit.serve.app import is_loopback
from rewardkit.serve.deps import PROTECTED, current_scorer, get_settings, require_key
from rewardkit.serve.routes import admin, feedback, openrlhf, ops, scoring


@pytest.fixture(scope="module")
def scorer(tiny_model: Path):  # type: ignore[no-untyped-def]
    from rewardkit.scoring.scorer import load_scorer

    return load_scorer(str(tiny_model), dtype="fp32")


def _needs_key(route: APIRoute) -> bool:
    todo, seen = [route.dependant], []
    while todo:
        dep = todo.pop()
        seen.append(dep.call)
        todo.extend(dep.dependencies)
    return require_key in seen


def test_routes_are_module_level_and_the_key_table_matches_them() -> None:
    routes = {r.path: r for m in (scoring, openrlhf, feedback, admin, ops) for r in m.router.routes}
    assert all(isinstance(r, APIRoute) for r in routes.values())
    assert set(create_app(ServeSettings(api_keys=["k"])).openapi()["paths"]) == set(routes)  # the app serves those
    protected = {path for path, route in routes.items() if _needs_key(route)}
    assert protected == set(PROTECTED), "deps.PROTECTED (what the gate checks before the body) is out of sync"
    for path in protected:
        assert routes[path].methods == set(PROTECTED[path][0]), path


def test_info_through_an_overridden_model_dependency(scorer) -> None:  # type: ignore[no-untyped-def]
    """No lifespan, no loading: the model dependency hands the route a scorer loaded here."""
    settings = ServeSettings(api_keys=["k"], max_inputs_per_request=7)
    app = create_app(settings)
    app.dependency_overrides[current_scorer] = lambda: scorer
    client = TestClient(app)  # not entered: lifespan (the model load) does not run
    assert client.get("/info").status_code == 401  # the gate and the key dependency still apply
    info = client.get("/info", headers={"Authorization": "Bearer k"}).json()
    assert info["model_version"] == scorer.version and info["dtype"] == "float32"
    assert info["precision"] == scorer.precision == "fp32"  # what the scorer chose is what /info says
    assert info["limits"]["max_inputs_per_request"] == 7 and info["limits"]["header_timeout_s"] == 10.0
    # settings come from app.state through a dependency too: the routes read the overriding ones
    app.dependency_overrides[get_settings] = lambda: ServeSettings(api_keys=["k"], max_inputs_per_request=3)
    info = client.get("/info", headers={"Authorization": "Bearer k"}).json()
    assert info["limits"]["max_inputs_per_request"] == 3
    # and the key dependency can be swapped for a test (the gate in front of it still checks the header)
    app.dependency_overrides[require_key] = lambda: "test"
    assert client.get("/info", headers={"Authorization": "Bearer k"}).status_code == 200


def test_ready_and_scoring_answer_503_json_while_no_model_is_loaded() -> None:
    app = create_app(ServeSettings(api_keys=[]))
    client = TestClient(app)  # lifespan not run: no model
    r = client.get("/ready")
    assert r.status_code == 503 and r.json() == {"error": "model not loaded yet", "error_type": "not_ready"}
    s = client.post("/v1/score", json={"inputs": [{"response": "r"}]})
    assert s.status_code == 503 and s.headers["retry-after"] == "1"


def test_the_openapi_spec_states_the_rules_it_can() -> None:
    spec = create_app(ServeSettings()).openapi()
    schemas = spec["components"]["schemas"]
    messages = schemas["Chat"]["properties"]["messages"]
    # JSON Schema can say an assistant message is there; "last" only in words
    assert messages["contains"]["properties"]["role"] == {"const": "assistant"}
    assert "LAST message must be the assistant's" in messages["description"]
    assert "as many items as query" in schemas["RewardRequest"]["properties"]["prompts"]["description"]
    assert "reload_failed" in schemas["ReloadRequest"]["properties"]["model_path"]["description"]
    assert "must name a model the server can load" in spec["paths"]["/admin/reload"]["post"]["description"]
    for path in ("/v1/score", "/get_reward", "/admin/reload", "/info"):
        method = "get" if path == "/info" else "post"
        assert {"401", "408", "413", "422", "429", "503"} <= set(spec["paths"][path][method]["responses"]), path


def test_is_loopback() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))


def test_an_open_server_on_a_public_address_warns_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # nothing is bound: TestClient runs the lifespan in process (the model path does not exist: no load)
    missing = str(tmp_path / "none")
    with caplog.at_level(logging.WARNING, logger="rewardkit.serve"):
        with TestClient(create_app(ServeSettings(host="0.0.0.0", api_keys=[], model_path=missing))):
            pass
        warned = [r for r in caplog.records if "not loopback" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING and "RK_API_KEYS" in warned[0].getMessage()
        caplog.clear()
        for quiet in (ServeSettings(host="0.0.0.0", api_keys=["k"]), ServeSettings(host="127.0.0.1", api_keys=[])):
            with TestClient(create_app(quiet.model_copy(update={"model_path": missing}))):
                pass
        assert not [r for r in caplog.records if "not loopback" in r.getMessage()]
