"""POST /v1/feedback and the score log through a real server on a real store (SQLite; PostgreSQL in CI)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from rk_testing.server import metric_values, running_server

from rewardkit.serve import ServeSettings
from rewardkit.store import open_store, session_scope
from rewardkit.store import queries as q
from rewardkit.store.score_log import iter_score_aggregates, iter_served_scores

PREF = {"prompt": "What is 2+2?", "responses": ["4", "5"], "choice": "a", "client_event_id": "ui-1"}
EVENT = {"type": "event", "kind": "thumbs_up", "prompt": "Hi", "response": "Hello!", "client_event_id": "ui-2"}


def settings(model: Path, store_url: str, **overrides) -> ServeSettings:
    fields = {"model_path": str(model), "dtype": "fp32", "api_keys": [], "database_url": store_url}
    return ServeSettings(**{**fields, "log_flush_interval_s": 0.05, **overrides})


def counts(store_url: str) -> dict[str, int]:
    with session_scope(open_store(store_url)) as s:
        return q.table_counts(s)


def test_feedback_is_committed_idempotent_and_per_item(tiny_model: Path, store_url: str) -> None:
    with running_server(settings(tiny_model, store_url)) as url:
        first = httpx.post(url + "/v1/feedback", json={"items": [PREF, EVENT]})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["stored"] == 2 and all(r["id"] for r in body["results"])
        # acknowledged = committed: readable from another connection at once
        assert (counts(store_url)["comparisons"], counts(store_url)["feedback_events"]) == (1, 1)
        again = httpx.post(url + "/v1/feedback", json={"items": [PREF, EVENT]})
        assert (again.status_code, again.json()) == (200, body)  # a retry answers as the first time did
        bad = {"prompt": "p", "responses": ["a", "b"], "choice": "nope", "client_event_id": "ui-3"}
        partial = httpx.post(url + "/v1/feedback", json={"items": [{**PREF, "client_event_id": "ui-4"}, bad]})
        assert partial.status_code == 207
        result = partial.json()["results"][1]
        assert result["code"] == 422 and result["field"] == "judgement.choice" and "item 1" in result["error"]
        whole = httpx.post(
            url + "/v1/feedback", json={"items": [{**PREF, "client_event_id": "ui-5"}, bad], "all_or_nothing": True}
        )
        assert whole.status_code == 422 and whole.json()["error_type"] == "validation"
        conflict = httpx.post(url + "/v1/feedback", json={"items": [PREF, {**PREF, "choice": "b"}]})
        assert conflict.status_code == 409 and "items 0 and 1" in conflict.json()["error"]
    assert counts(store_url)["comparisons"] == 2  # ui-1 and ui-4


def test_limits_and_bad_bodies_are_4xx(serve, tmp_path: Path) -> None:
    with serve(database_url=f"sqlite:///{tmp_path / 's.db'}", feedback_max_items=3, max_chars_per_input=50) as url:
        many = httpx.post(url + "/v1/feedback", json={"items": [PREF] * 4})
        assert many.status_code == 413 and many.json()["error_type"] == "payload_too_large"
        long = httpx.post(url + "/v1/feedback", json={"items": [{**PREF, "responses": ["4", "x" * 51]}]})
        assert long.status_code == 413 and long.json()["results"][0]["field"] == "responses[1]"
        for body in ({"items": []}, {"items": "x"}, {"itemz": [PREF]}, [PREF]):
            r = httpx.post(url + "/v1/feedback", json=body)
            assert r.status_code == 422 and r.json()["error_type"] == "validation", body
        r = httpx.post(url + "/v1/feedback", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422


def test_a_database_that_cannot_open_is_503_and_scoring_goes_on(serve, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the database's folder should be")
    with serve(database_url=f"sqlite:///{blocked / 'x.db'}") as url:
        r = httpx.post(url + "/v1/feedback", json={"items": [PREF]})
        assert r.status_code == 503 and r.json()["error_type"] == "store_unavailable" and r.headers["Retry-After"]
        scored = httpx.post(url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]})
        assert scored.status_code == 200 and scored.json()["score_ids"] is None


def test_feedback_takes_its_own_keys(serve, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    with serve(database_url=db, api_keys=["score-key"]) as url:  # no feedback key: nobody may write
        r = httpx.post(url + "/v1/feedback", json={"items": [PREF]}, headers={"Authorization": "Bearer score-key"})
        assert r.status_code == 401 and "RK_FEEDBACK_KEYS" in r.json()["error"]
    with serve(database_url=db, api_keys=["score-key"], feedback_keys=["fb-key"]) as url:
        denied = httpx.post(url + "/v1/feedback", json={"items": [PREF]}, headers={"Authorization": "Bearer score-key"})
        assert denied.status_code == 401
        ok = httpx.post(url + "/v1/feedback", json={"items": [PREF]}, headers={"Authorization": "Bearer fb-key"})
        assert ok.status_code == 200
        scoring = httpx.post(
            url + "/v1/score", json={"inputs": [{"response": "r"}]}, headers={"Authorization": "Bearer fb-key"}
        )
        assert scoring.status_code == 401  # and a feedback key does not score


def test_served_scores_are_logged_and_citable(tiny_model: Path, store_url: str) -> None:
    with running_server(settings(tiny_model, store_url)) as url:
        scored = httpx.post(
            url + "/v1/score",
            json={"inputs": [{"prompt": "Hi", "response": "Hello!"}, {"prompt": "Hi", "response": "Go away."}]},
        )
        ids = scored.json()["score_ids"]
        assert len(set(ids)) == 2 and scored.headers["X-Score-Count"] == "2"
        assert ids[1] == scored.headers["X-Score-Id-Prefix"] + f"{1:08x}"
        rollout = httpx.post(url + "/get_reward", json={"query": ["a b c"] * 50})
        assert len(rollout.json()["score_ids"]) == 50
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the score log writes every 50 ms here
            cited = httpx.post(url + "/v1/feedback", json={"items": [{"score_ids": ids, "choice": "a"}]})
            if cited.status_code == 200:
                break
            time.sleep(0.05)
        assert cited.status_code == 200, cited.text
        metrics = metric_values(httpx.get(url + "/metrics").text)
    from datetime import UTC, datetime, timedelta

    since = datetime.now(UTC) - timedelta(hours=1)
    with session_scope(open_store(store_url)) as s:
        served = list(iter_served_scores(s, since=since))
        aggregates = list(iter_score_aggregates(s, since=since))
        (comparison,) = [c.comparison for c in q.iter_comparisons(s)]
    by_route = {}
    for row in aggregates:
        by_route[row["route"]] = by_route.get(row["route"], 0) + row["count"]
    assert by_route == {"/v1/score": 2, "/get_reward": 50}  # every score counted
    assert sum(r["route"] == "/v1/score" for r in served) == 2  # /v1/* logged in full
    assert sum(r["route"] == "/get_reward" for r in served) < 50  # rollouts sampled (1% by default)
    assert [r.text for r in comparison.responses] == ["Hello!", "Go away."]
    version = scored.json()["model_version"]
    assert metrics[("rk_served_reward_normalized_bucket", (("le", "+Inf"), ("model_version", version)))] == 52
    assert metrics[("rk_feedback_records_total", ())] >= 1


def test_clients_send_feedback_with_their_own_key(serve, tmp_path: Path) -> None:
    import asyncio

    from rewardkit.client import AsyncClient, Client, ServiceError

    db = f"sqlite:///{tmp_path / 's.db'}"
    with serve(database_url=db, api_keys=["score-key"], feedback_keys=["fb-key"]) as url:
        with Client(url, api_key="score-key", feedback_key="fb-key") as rk:
            ids = rk.score([("Hi", "Hello!"), ("Hi", "Go away.")]).score_ids
            assert ids is not None and len(ids) == 2
            receipt = rk.feedback([PREF, {**PREF, "choice": "nope", "client_event_id": "x"}])
            assert (receipt.stored, receipt.rejected, receipt.ok) == (1, 1, False)
            with pytest.raises(ServiceError) as err:  # a batch of nothing valid: 422, raised
                rk.feedback([{"prompt": "p"}])
            assert err.value.status == 422 and "item 0" in err.value.message
        with Client(url, api_key="score-key") as no_feedback_key:
            with pytest.raises(ServiceError) as err:
                no_feedback_key.feedback([PREF])
            assert err.value.status == 401

        async def send() -> int:
            async with AsyncClient(url, api_key="score-key", feedback_key="fb-key") as rk:
                return (await rk.feedback([EVENT])).stored

        assert asyncio.run(send()) == 1


def test_a_card_reference_bins_the_log_and_feeds_the_drift_gauge(tmp_path: Path) -> None:
    import json

    import numpy as np
    from rk_testing.tiny_models import build_tiny_model

    from rewardkit.model.reference import fit_reference
    from rewardkit.store.score_log import get_score_references

    model = build_tiny_model(tmp_path / "m")
    card = json.loads((model / "rewardkit.json").read_text())
    reference = fit_reference(np.random.default_rng(0).normal(0.5, 2.0, 400))  # the card's mean and std
    (model / "rewardkit.json").write_text(json.dumps({**card, "reference": reference}))
    store_url = f"sqlite:///{tmp_path / 's.db'}"
    with running_server(settings(model, store_url)) as url:
        r = httpx.post(url + "/get_reward", json={"query": [f"answer number {i}" for i in range(150)]})
        version = r.json()["model_version"]
        metrics = metric_values(httpx.get(url + "/metrics").text)
    psi = metrics[("rk_reward_drift_psi", (("model_version", version),))]
    assert psi >= 0
    with session_scope(open_store(store_url)) as s:
        stored = get_score_references(s)[version]
    assert stored["source"] == "card" and stored["edges"] == reference["edges"]


def test_disputed_compares_and_uncertain_ensemble_scores_reach_the_review_queue(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from rk_testing.tiny_models import build_tiny_ensemble

    from rewardkit.store.review import queue_stats

    store_url = f"sqlite:///{tmp_path / 's.db'}"
    model = build_tiny_ensemble(tmp_path / "ens", members=2)
    # every P(a > b) and every std is in band here, so what is offered is queued
    overrides = {"review_routing": True, "review_p_band": (0.0, 1.0), "review_std_band": (0.0, 1e9)}
    with running_server(settings(model, store_url, **overrides)) as url:
        r = httpx.post(url + "/v1/compare", json={"prompt": "Hi", "response_a": "Hello!", "response_b": "Go away."})
        assert r.status_code == 200
        r = httpx.post(
            url + "/v1/score", json={"inputs": [{"prompt": "Q", "response": "yes"}, {"prompt": "Q", "response": "no"}]}
        )
        assert r.status_code == 200 and r.json()["uncertainty"] is not None
    with session_scope(open_store(store_url)) as s:  # the routers flushed on shutdown
        by_reason = queue_stats(s, now=datetime.now(UTC)).by_reason
    counts = {reason: sum(statuses.values()) for reason, statuses in by_reason.items()}
    assert counts == {"routing-compare": 1, "routing-score": 1}, counts
