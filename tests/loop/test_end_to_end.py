"""The loop for real, on a small scale: a live service serves ``registry:rm@champion``; a simulated application
scores AlpacaEval outputs (../shared/data) through it and sends the judge's choices back through /v1/feedback;
``loop tick`` sees enough new comparisons, trains a challenger (tiny settings), gates it on a golden snapshot of
held-out prompts and promotes it; the service switches while a client keeps scoring (zero failed requests, every
response from one of the two versions). Then a challenger trained on flipped labels is refused by the gates, a
forced promotion of it is recorded as forced, and one rollback puts the good version back in service.

Kept small: outputs of at most 600 characters (so a 192-token window sees whole responses, and the judge's
length preference, about 70% on these, is learnable by a 2-layer BERT in a few dozen steps)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from loop_helpers import write_config
from rk_testing.server import running_server

from rewardkit.data.compile import CompileConfig
from rewardkit.data.snapshot import build_snapshot
from rewardkit.loop.config import load_loop_config
from rewardkit.loop.machine import tick
from rewardkit.records import Annotator, Comparison, PairwiseJudgement, Response
from rewardkit.registry.aliases import promote, rollback, set_alias
from rewardkit.registry.policy import load_policy
from rewardkit.registry.versions import register_version
from rewardkit.serve import ServeSettings
from rewardkit.settings import get_settings
from rewardkit.store import open_store, session_scope
from rewardkit.store import registry as q
from rewardkit.store.queries import add_comparisons

pytestmark = pytest.mark.slow

MAX_CHARS, GOLDEN_PROMPTS, GOLDEN_PAIRS, APP_PAIRS = 600, 18, 120, 240
POLICY = """
[accuracy]
margin = 0.05
min_pairs = 50
[calibration]
max_ece = 0.5
max_ece_increase = 0.5
[probes]
max_rise_rate = 1.0
max_rise_rate_increase = 0.5
[length_bias]
max_increase = 2.0
"""


def alpaca_pairs(shared: Path) -> tuple[list[dict], list[dict]]:
    """(golden rows, application rows): short non-tie AlpacaEval comparisons, split by instruction."""
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    with gzip.open(shared / "alpacaeval" / "annotations.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            if r.get("preference") is None or float(r["preference"]) == 1.5 or len(r["instruction"]) > 200:
                continue
            if max(len(r["output_1"]), len(r["output_2"])) <= MAX_CHARS and r["output_1"] != r["output_2"]:
                by_prompt[r["instruction"]].append(r)
    prompts = sorted(by_prompt)
    golden = [r for p in prompts[:GOLDEN_PROMPTS] for r in by_prompt[p][:8]][:GOLDEN_PAIRS]
    app = [r for p in prompts[GOLDEN_PROMPTS:] for r in by_prompt[p][:6]][:APP_PAIRS]  # >= 40 prompts
    return golden, app


def choice(r: dict) -> str:
    return "a" if float(r["preference"]) < 1.5 else "b"


class Scorer(threading.Thread):
    """A client scoring in a loop through the live service, counting failures and the versions it saw."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.failures, self.versions, self.count = url, threading.Event(), [], set(), 0

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self.stop.is_set():
                r = http.post("/v1/score", json={"inputs": [{"prompt": "Name a color.", "response": "Blue."}]})
                self.count += 1
                if r.status_code != 200:
                    self.failures.append((r.status_code, r.text[:200]))
                else:
                    self.versions.add(r.json()["model_version"])
                time.sleep(0.02)


def wait_for_version(url: str, version: int, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if httpx.get(url + "/info", timeout=30).json().get("registry_version") == version:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"the service did not switch to v{version} within {timeout} s")


def test_the_loop_end_to_end_through_a_live_service(
    shared_data: Path, tmp_path: Path, tiny_backbone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RK_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    settings = get_settings()
    factory = open_store(settings.resolved_database_url)
    golden_rows, app_rows = alpaca_pairs(shared_data)
    judge = Annotator("alpacaeval-human-panel", "human")
    with session_scope(factory) as s:  # golden: human labels on prompts the application never sends
        add_comparisons(s, [
            Comparison(prompt=r["instruction"], responses=(Response(r["output_1"]), Response(r["output_2"])),
                       judgement=PairwiseJudgement(choice(r)), annotator=judge, source="golden")
            for r in golden_rows
        ])  # fmt: skip
        golden = build_snapshot(s, CompileConfig(sources=("golden",)), settings.snapshot_dir)
        q.mark_golden(s, snapshot_id=golden.id, by="test", note="AlpacaEval, held-out prompts")
    register_version(factory, name="rm", source=Path(tiny_backbone), created_by="test")  # an untrained champion
    set_alias(factory, name="rm", alias="champion", version=1, who="test")

    write_config(tmp_path / "policy.toml", POLICY)
    loop_toml = write_config(tmp_path / "loop.toml", f"""
name = "rm"
min_new_comparisons = {APP_PAIRS - 20}
warm_start = "champion"
policy = "policy.toml"
lease_ttl_s = 30
device = "cpu"
[compile]
sources = ["app"]
fractions = [0.8, 0.2, 0.0]
[train]
max_steps = 60
lr = 3e-3
max_length = 192
batch_size = 8
eval_every = 30
threads = 1
bf16 = "off"
reference_size = 16
[eval]
max_probe_rows = 16
n_boot = 50
""")  # fmt: skip
    config = load_loop_config(loop_toml)
    serve_settings = ServeSettings(
        model_path="registry:rm@champion", database_url=settings.resolved_database_url, dtype="fp32",
        api_keys=[], score_log=False, alias_poll_s=0.25,
    )  # fmt: skip
    with running_server(serve_settings) as url:
        info = httpx.get(url + "/info").json()
        assert (info["registry"], info["registry_version"]) == ("registry:rm@champion", 1)
        v1_name = info["model_version"]

        # the application: scores both outputs, then reports the user's (the judge's) choice
        with httpx.Client(base_url=url, timeout=60) as http:
            for start in range(0, len(app_rows), 40):
                batch = app_rows[start : start + 40]
                inputs = [
                    {"prompt": r["instruction"], "response": r[k]} for r in batch for k in ("output_1", "output_2")
                ]
                assert http.post("/v1/score", json={"inputs": inputs}).status_code == 200
                items = [
                    {"prompt": r["instruction"], "responses": [r["output_1"], r["output_2"]], "choice": choice(r),
                     "source": "app", "client_event_id": f"app-{start + i}"}
                    for i, r in enumerate(batch)
                ]  # fmt: skip
                answer = http.post("/v1/feedback", json={"items": items})
                assert answer.status_code == 200, answer.text

        client = Scorer(url)
        client.start()
        result = tick(factory, config)
        assert result.state == "promoted", (result, q_verdict(factory, result.run_id))
        switched = wait_for_version(url, 2)
        time.sleep(0.5)
        client.stop.set()
        client.join(timeout=60)
        v2_name = httpx.get(url + "/info").json()["model_version"]
        assert client.failures == [] and client.count > 10
        assert client.versions <= {v1_name, v2_name} and v2_name in client.versions and v1_name != v2_name
        assert switched < 5.0, f"the service took {switched:.1f} s to follow the promotion"

        # a challenger trained on flipped labels: the gates refuse it, the champion stays
        bad = train_flipped(factory, tmp_path, tiny_backbone, config)
        policy = load_policy(tmp_path / "policy.toml")
        refused = promote(factory, name="rm", version=bad, who="test", policy=policy, eval_config=config.eval_config())
        assert refused.move is None and not refused.verdict["passed"]
        failed = [c["gate"] for c in refused.verdict["checks"] if not c["passed"]]
        assert "accuracy" in failed, refused.verdict
        # forced: recorded as forced with the overridden verdict, and served; one rollback brings v2 back
        forced = promote(factory, name="rm", version=bad, who="test", policy=policy, force=True,
                         eval_config=config.eval_config())  # fmt: skip
        assert forced.move is not None and forced.move.forced
        wait_for_version(url, bad)
        rollback(factory, name="rm", who="oncall", why="bad deploy")
        wait_for_version(url, 2)
        with session_scope(factory) as s:
            moves = [
                (m.kind, m.from_version, m.to_version, m.forced)
                for m in q.alias_history(s, name="rm", alias="champion")
            ]
        assert moves == [
            ("rollback", bad, 2, False),
            ("promote", 2, bad, True),
            ("promote", 1, 2, False),
            ("set", None, 1, False),
        ]
    factory.kw["bind"].dispose()
    get_settings.cache_clear()


def q_verdict(factory, run_id: int | None) -> object:
    with session_scope(factory) as s:
        run = q.get_loop_run(s, run_id=run_id) if run_id else None
        return (run.verdict, run.error) if run else None


def train_flipped(factory, tmp_path: Path, backbone: str, config) -> int:
    """Train on the application's pairs with every label flipped; register it. Returns its version."""
    from rewardkit.train import TrainConfig, train

    with session_scope(factory) as s:
        snap = q.get_model_version(s, name="rm", version=2).snapshot_id
    folder = get_settings().snapshot_dir / snap
    rows = []
    for split in ("train", "validation"):
        for line in (folder / f"{split}.jsonl").read_text().splitlines():
            pair = json.loads(line)
            rows.append({"prompt": pair["prompt"], "chosen": pair["rejected"], "rejected": pair["chosen"]})
    data = tmp_path / "flipped.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "flipped-model"
    train(TrainConfig(data=str(data), out=str(out), backbone=backbone, progress=False, **config.train))
    info, _ = register_version(factory, name="rm", source=out, created_by="test (flipped labels)")
    return info.version
