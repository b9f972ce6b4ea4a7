"""Monitoring end to end on a real store: synthetic aggregates written with the store's own functions, then the
report and the rule check read them back.

The drift scenario (rk_testing/monitor_synthetic.py): model rm-v1, reference fitted on a perfect N(0, 1) sample in
4 bins (edges the quartiles -0.6745, 0, 0.6745; 0.25 each). 12 hours of /v1/score, 1,200 scores an hour, perfect
samples of N(0, 1) for 6 hours, then N(1, 1): the scores shift by +1 std halfway.

Hours 0-5: score k is Phi^-1((k + 0.5) / 1200), in bin b while (k + 0.5) / 1200 < 0.25 b: 300 a bin, PSI 0.
Hours 6-11: the edges minus the shift of 1 are -1.6745, -1, -0.3255, where Phi is 0.047022, 0.158655, 0.372398;
times 1,200: 56.43, 190.39, 446.88 -> the cumulative counts 56, 190, 447 (k + 0.5 below each) and bins
56, 134, 257, 753, shares .046667 .111667 .214167 .6275:
    (.046667 - .25) ln(.046667 / .25) = -.203333 * -1.678431 = 0.341281
    (.111667 - .25) ln(.111667 / .25) = -.138333 * -0.805906 = 0.111484
    (.214167 - .25) ln(.214167 / .25) = -.035833 * -0.154707 = 0.005544
    (.6275   - .25) ln(.6275   / .25) =  .3775   *  0.920283 = 0.347407
    PSI = 0.805716 (a continuous N(1, 1) against N(0, 1) quartiles gives 0.8039)
KS: cumulative shares .046667 .158333 .3725 against .25 .5 .75: gaps .203333 .341667 .3775, D = 0.3775.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rk_testing.monitor_synthetic import T0, drift_rows, fill_store, reference_4, rl_rows

from rewardkit.model.reference import normal_reference
from rewardkit.monitor.report import build_report, collect, write_report
from rewardkit.monitor.rules import evaluate_rules, parse_rules
from rewardkit.monitor.series import parse_duration
from rewardkit.store import session_scope
from rewardkit.store.score_log import get_score_references, iter_score_aggregates

UNTIL = T0 + timedelta(hours=12)
PSI_SHIFTED = 0.805716
KS_SHIFTED = 0.3775


@pytest.fixture
def filled(store):  # noqa: ANN001, ANN201 - the conftest's session factory
    ref = reference_4()
    rows = drift_rows(ref) + rl_rows(ref, reward_step=0.1, length_step=40.0)
    rows += rl_rows(ref, "rm-rl-honest", reward_step=0.1, length_step=0.0)
    rows += drift_rows(ref, "<script>alert(1)</script>")[:30]  # its first 22 minutes, 440 scores, no reference
    fill_store(store, {"rm-v1": ref, "rm-rl": ref, "rm-rl-honest": ref}, rows)
    return store


def test_the_shift_shows_in_psi_and_ks_against_hand_worked_numbers(filled) -> None:  # noqa: ANN001
    with session_scope(filled) as session:
        data = collect(session, since=timedelta(hours=12), window=timedelta(hours=1), until=UNTIL)
    ws = [w for w in data.windows if w.model_version == "rm-v1"]
    assert [w.served for w in ws] == [1200] * 12
    assert [w.psi for w in ws[:6]] == pytest.approx([0.0] * 6, abs=1e-12)
    assert [w.psi for w in ws[6:]] == pytest.approx([PSI_SHIFTED] * 6, abs=1e-4)
    assert [w.ks for w in ws[6:]] == pytest.approx([KS_SHIFTED] * 6, abs=1e-9)
    # perfect samples are symmetric: each window's mean is its centre
    assert [w.mean for w in ws] == pytest.approx([0.0] * 6 + [1.0] * 6, abs=1e-9)
    # p50 before: target 600 = the top of bin 1, the median edge 0. After: 447 below the top bin, 153 of its
    # 753 scores up it (0.2032); a normal N(1, 1) has Phi(-0.3257) = 0.3723 below the edge 0.6743, so the
    # level is 0.3723 + 0.2032 * 0.6277 = 0.4999: the median 1 of the shifted scores, not the edge
    assert ws[0].p50 == pytest.approx(0.0, abs=1e-9)
    assert ws[-1].p50 == pytest.approx(1.0, abs=0.005)
    # p95 after: 1 + 1.645 (the upper tail is read as the normal it is), far past the reference's range
    assert ws[-1].p95 == pytest.approx(2.645, abs=0.01)
    assert ws[0].uncertain_share == pytest.approx(0.1)  # every tenth score at 0.8 >= 0.5
    assert ws[0].uncertainty_mean == pytest.approx(0.26)  # 0.1 * 0.8 + 0.9 * 0.2
    assert ws[0].length_mean == pytest.approx(400.0)


def test_a_3h_window_mixes_before_and_after(filled) -> None:  # noqa: ANN001
    # windows anchored at until: 09-12, 06-09, 03-06, 00-03; 03-06 and 00-03 are before the shift
    with session_scope(filled) as session:
        data = collect(session, since=timedelta(hours=12), window=timedelta(hours=3), until=UNTIL)
    ws = [w for w in data.windows if w.model_version == "rm-v1"]
    assert [w.served for w in ws] == [3600] * 4
    assert [w.psi for w in ws] == pytest.approx([0, 0, PSI_SHIFTED, PSI_SHIFTED], abs=1e-4)


def test_the_alarm_on_a_simulated_rl_run(filled) -> None:  # noqa: ANN001
    with session_scope(filled) as session:
        data = collect(session, since=timedelta(hours=12), window=timedelta(hours=1), until=UNTIL)
    verdicts = {a.model_version: a for a in data.alarms}
    assert set(verdicts) == {"rm-rl", "rm-rl-honest"}  # RL traffic only
    hacked, honest = verdicts["rm-rl"], verdicts["rm-rl-honest"]
    # reward 0, 0.1, ..., 0.9 and length 500 + 40 k an hour: the last 8 hours both strictly rise
    assert hacked.fired and hacked.rising_with_reward == ["length_mean"]
    assert hacked.reward.slope == pytest.approx(0.1, abs=1e-9)
    assert hacked.companions["length_mean"].slope == pytest.approx(40.0)
    # the same reward climb at a constant length (and a constant ensemble std): no alarm
    assert not honest.fired and honest.reward.p_value < 0.001


def test_the_report_files(filled, tmp_path) -> None:  # noqa: ANN001
    with session_scope(filled) as session:
        data = collect(session, since=timedelta(hours=12), window=timedelta(hours=1), until=UNTIL)
    report = build_report(data)
    paths = write_report(report, data.windows, tmp_path / "out")
    on_disk = json.loads(paths["report.json"].read_text())
    assert on_disk == report
    by_model = {m["model_version"]: m for m in on_disk["models"]}
    summary = by_model["rm-v1"]["routes"][0]["summary"]
    assert summary["served"] == 14400 and summary["windows_psi_significant"] == 6
    assert summary["max_psi"] == pytest.approx(PSI_SHIFTED, abs=1e-4)
    assert on_disk["overoptimization_fired"] == ["rm-rl"]
    script = by_model["<script>alert(1)</script>"]
    assert script["reference"] is None and "no reference" in script["warning"]
    # 440 scores in the 00:00 window would be enough for drift, but there is nothing to compare with
    assert script["routes"][0]["windows"][0]["drift_note"] == "no reference for this model version"

    html = paths["report.html"].read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('src="data:image/png;base64,') == 4  # one figure per model version, inlined
    md = paths["report.md"].read_text()
    assert "<script>" not in md and r"\<script\>" in md
    pngs = sorted(p.name for p in (tmp_path / "out" / "plots").iterdir())
    assert len(pngs) == 4 and all(p.endswith(".png") and "<" not in p for p in pngs)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp")]  # no leftovers


def test_a_normal_fallback_reference_is_flagged(store) -> None:  # noqa: ANN001
    ref = normal_reference(0.0, 1.0, bins=4)
    fill_store(store, {"old": ref}, drift_rows(ref, "old")[:60])
    with session_scope(store) as session:
        report = build_report(
            collect(session, since=timedelta(hours=1), window=timedelta(hours=1), until=T0 + timedelta(hours=1))
        )
    assert report["models"][0]["reference"]["source"] == "normal"
    assert "normal" in report["warnings"][0]


def test_a_malformed_stored_reference_costs_its_drift_not_the_report(store) -> None:  # noqa: ANN001
    ref = reference_4()
    broken = {**ref, "proportions": [0.5, 0.5]}  # 3 edges need 4 proportions; the store does not check
    fill_store(store, {"broken": broken, "rm-v1": ref}, drift_rows(ref, "broken")[:60] + drift_rows(ref)[:60])
    with session_scope(store) as session:
        data = collect(session, since=timedelta(hours=1), window=timedelta(hours=1), until=T0 + timedelta(hours=1))
    report = build_report(data)
    assert "score_references['broken'].proportions: expected 4 values" in report["warnings"][0]
    by_model = {w.model_version: w for w in data.windows}
    assert by_model["broken"].psi is None and by_model["broken"].served == 900  # 60 rows: 45 minutes
    assert by_model["rm-v1"].psi < 0.01  # 900 of the hour's 1,200 N(0, 1) scores, shuffled: about the reference


RULES = """
[[rule]]
name = "score drift"
metric = "psi"
max = 0.25
route = "/v1/*"

[[rule]]
metric = "uncertain_share"
max = 0.2

[[rule]]
metric = "overoptimization"
"""


def _check(factory, since: str, until) -> dict:  # noqa: ANN001
    rules = parse_rules(RULES)
    with session_scope(factory) as session:
        refs = get_score_references(session)
        rows = list(iter_score_aggregates(session, since=until - timedelta(hours=12), until=until))
    return evaluate_rules(
        rules, rows, references=refs, since=parse_duration(since), until=until, default_window=timedelta(hours=1)
    )


def test_rules_on_the_store(filled) -> None:  # noqa: ANN001
    # until 06:00: nothing has drifted yet and 10% of scores are uncertain (under 0.2); the alarm reads back 8
    # one-hour windows, of which hours 0-5 hold RL rollouts: 6 windows, enough for a verdict, and rm-rl fires
    quiet = _check(filled, "6h", T0 + timedelta(hours=6))
    assert [a["metric"] for a in quiet["alerts"]] == ["overoptimization"]
    assert quiet["alerts"][0]["model_version"] == "rm-rl"
    # the whole run: 6 drifted /v1/score windows of rm-v1 (PSI 0.8057 > 0.25), the alarm on rm-rl
    loud = _check(filled, "12h", UNTIL)
    drift = [a for a in loud["alerts"] if a["metric"] == "psi"]
    assert len(drift) == 6 and {a["model_version"] for a in drift} == {"rm-v1"}
    assert drift[0]["value"] == pytest.approx(PSI_SHIFTED, abs=1e-4)
    assert drift[0]["window_start"] == (T0 + timedelta(hours=6)).isoformat()
    assert "rule 1 (score drift): psi = 0.8057" in drift[0]["message"]
    assert not loud["ok"]
    # the <script> version's windows have no reference: PSI skipped, never an alert
    assert loud["skipped"] > 0
