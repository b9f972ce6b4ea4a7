"""``rewardkit review``: the human review queue and its labeling page.

rewardkit review annotator add alice [--admin] [--days 90]     # prints alice's token (shown once)
rewardkit review enqueue --from scored.jsonl --strategy uncertainty --budget 200 --k 2
rewardkit review enqueue --from log --since-hours 24 --strategy disagreement --budget 100
rewardkit review gold known.jsonl                                # gold items (known answers)
rewardkit review serve --guidelines guidelines.md --port 8100
rewardkit review stats | requeue-disagreements | export | import
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardkit.cli.output import UserError, emit_json, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open() -> Any:
    from rewardkit.settings import get_settings
    from rewardkit.store import open_store

    url = get_settings().resolved_database_url
    try:
        return open_store(url)
    except Exception as exc:  # an unreachable server or a bad URL is the user's to fix
        reason = str(exc).split("\n(Background")[0]
        raise UserError(f"cannot open the database {url.split('@')[-1]}: {reason}") from exc


def _say(json_: bool, payload: dict[str, Any], line: str) -> None:
    emit_json(payload) if json_ else stdout.print(line, highlight=False)


def register(app: typer.Typer) -> None:
    review = typer.Typer(help="Human review: the queue, active learning, the labeling page.", no_args_is_help=True)
    app.add_typer(review, name="review")
    annotator = typer.Typer(help="People allowed on the labeling page.", no_args_is_help=True)
    review.add_typer(annotator, name="annotator")

    @annotator.command("add")
    def annotator_add(
        name: Annotated[str, typer.Argument(help="The annotator's name (shown on labels and the admin page).")],
        admin: Annotated[bool, typer.Option("--admin", help="May open the admin view.")] = False,
        days: Annotated[float, typer.Option(help="Days until the token expires.")] = 90.0,
        json_: JsonOpt = False,
    ) -> None:
        """Add an annotator (or renew one: the old token stops working) and print their token, once."""
        from rewardkit.review.auth import hash_token, new_token
        from rewardkit.store.engine import session_scope
        from rewardkit.store.review import put_annotator

        if not name.strip() or len(name) > 200:
            raise UserError("NAME: expected 1 to 200 characters")
        if days <= 0:
            raise UserError(f"--days: expected a positive number, got {days}")
        token = new_token()
        expires = datetime.now(UTC) + timedelta(days=days)
        with session_scope(_open()) as s:
            put_annotator(s, name=name.strip(), token_hash=hash_token(token), admin=admin, expires_at=expires)
        _say(json_, {"name": name.strip(), "token": token, "expires_at": expires.isoformat()}, token)

    @annotator.command("list")
    def annotator_list(json_: JsonOpt = False) -> None:
        """Annotators and when their tokens expire."""
        from rewardkit.store.review import list_annotators

        with _open()() as s:
            rows = [
                {"name": r.name, "admin": r.admin, "expires_at": r.expires_at.isoformat()} for r in list_annotators(s)
            ]
        if json_:
            emit_json(rows)
            return
        for r in rows:
            stdout.print(f"{r['name']}{' (admin)' if r['admin'] else ''}  expires {r['expires_at']}", highlight=False)

    @review.command()
    def enqueue(
        source: Annotated[
            str, typer.Option("--from", help="log (the served-score log), snapshot (with --snapshot), or a FILE.")
        ],
        strategy: Annotated[
            str,
            typer.Option(
                help="random (default: with a fine-tuned model no strategy beat it in "
                "benchmarks/active_learning_bench.py, docs/review.md) | uncertainty (beat random for a cheap linear "
                "head; needs scores) | disagreement | margin | diversity."
            ),
        ] = "random",
        budget: Annotated[int, typer.Option(help="How many items to queue at most.")] = 100,
        k: Annotated[int, typer.Option("--k", help="Labels each item needs (overlap).")] = 1,
        snapshot: Annotated[str, typer.Option(help="Snapshot id or folder, for --from snapshot.")] = "",
        split: Annotated[str, typer.Option(help="Snapshot split, for --from snapshot.")] = "train",
        since_hours: Annotated[float, typer.Option(help="For --from log: scores of the last N hours.")] = 24.0,
        temperature: Annotated[
            float, typer.Option(help="For --from log: P(a > b) = sigmoid((s_a - s_b) / T) (the model card's T).")
        ] = 1.0,
        seed: Annotated[int, typer.Option(help="Random seed (random, diversity).")] = 0,
        json_: JsonOpt = False,
    ) -> None:
        """Pick the pairs most worth a human's time and queue them (identical items are queued once)."""
        from rewardkit.review.candidates import StrategyError
        from rewardkit.review.queue import enqueue_candidates
        from rewardkit.review.sources import SourceError, from_file, from_log, from_snapshot
        from rewardkit.store.engine import session_scope

        if budget < 0:
            raise UserError(f"--budget: expected a number >= 0, got {budget}")
        if k < 1:
            raise UserError(f"--k: expected a number >= 1, got {k}")
        factory = _open()
        now = datetime.now(UTC)
        try:
            if source == "log":
                with factory() as s:
                    candidates = from_log(s, since=now - timedelta(hours=since_hours), temperature=temperature)
            elif source == "snapshot":
                if not snapshot:
                    raise UserError("--from snapshot needs --snapshot ID")
                candidates = from_snapshot(snapshot, split)
            else:
                path = Path(source)
                if not path.exists():
                    raise UserError(f"--from: expected log, snapshot or an existing file; {source!r} is none of these")
                candidates = from_file(path)
            with session_scope(factory) as s:
                counts = enqueue_candidates(
                    s, candidates, strategy=strategy, budget=budget, needed=k, now=now, seed=seed
                )
        except (SourceError, StrategyError) as exc:
            raise UserError(str(exc)) from None
        _say(
            json_,
            counts,
            f"queued {counts['queued']} items ({counts['duplicates']} already queued) of {counts['picked']} picked "
            f"by {strategy} from {counts['candidates']} candidates",
        )

    @review.command()
    def gold(
        path: Annotated[Path, typer.Argument(help="Pairs with known answers: prompt+chosen+rejected, or +label.")],
        json_: JsonOpt = False,
    ) -> None:
        """Add gold items (known answers), mixed into annotators' queues at the server's --gold-rate."""
        from rewardkit.review.queue import gold_items
        from rewardkit.review.sources import SourceError
        from rewardkit.store.engine import session_scope
        from rewardkit.store.review import enqueue as enqueue_items

        try:
            items = gold_items(path)
        except SourceError as exc:
            raise UserError(str(exc)) from None
        with session_scope(_open()) as s:
            inserted, duplicates = enqueue_items(s, items, now=datetime.now(UTC))
        _say(json_, {"queued": inserted, "duplicates": duplicates}, f"added {inserted} gold items ({duplicates} known)")

    @review.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port.")] = 8100,
        guidelines: Annotated[Path | None, typer.Option(help="Markdown guidelines shown with every item.")] = None,
        gold_rate: Annotated[float, typer.Option(help="Share of assignments that are gold items.")] = 0.1,
        assignment_minutes: Annotated[float, typer.Option(help="Minutes an item is held before it returns.")] = 30.0,
        attributes: Annotated[str, typer.Option(help="Comma-separated attributes a label may be about.")] = "",
        secure_cookies: Annotated[bool, typer.Option(help="Mark cookies Secure (serve behind https).")] = False,
    ) -> None:
        """The labeling page (FastAPI + uvicorn). Set RK_REVIEW_SECRET to keep sessions across restarts."""
        import os

        import uvicorn

        from rewardkit.review.app import ReviewConfig, create_review_app

        if guidelines is not None and not guidelines.is_file():
            raise UserError(f"--guidelines: no file {guidelines}")
        if not 0.0 <= gold_rate <= 1.0:
            raise UserError(f"--gold-rate: expected a number in [0, 1], got {gold_rate}")
        if assignment_minutes <= 0:
            raise UserError(f"--assignment-minutes: expected a positive number, got {assignment_minutes}")
        config = ReviewConfig(
            guidelines=guidelines,
            gold_rate=gold_rate,
            assignment_minutes=assignment_minutes,
            attributes=tuple(a.strip() for a in attributes.split(",") if a.strip()),
            secret=os.environ.get("RK_REVIEW_SECRET", "").encode(),
            secure_cookies=secure_cookies,
        )
        uvicorn.run(create_review_app(_open(), config), host=host, port=port, log_level="warning")

    @review.command()
    def stats(json_: JsonOpt = False) -> None:
        """Queue size by reason, throughput, annotators, agreement."""
        from dataclasses import asdict

        from rewardkit.review.agreement import summary
        from rewardkit.store.review import item_labels, queue_stats

        with _open()() as s:
            st, agreement = queue_stats(s, now=datetime.now(UTC)), summary(item_labels(s))
        if json_:
            emit_json({**asdict(st), "agreement": agreement})
            return
        for reason, counts in sorted(st.by_reason.items()):
            stdout.print(f"{reason:>16}: {counts.get('open', 0)} open, {counts.get('done', 0)} done", highlight=False)
        stdout.print(f"labels: {st.labels_total} ({st.labels_last_hour} in the last hour)", highlight=False)
        stdout.print(
            f"agreement on {agreement['overlapping_items']} items: {agreement['percent_agreement']:.3f}, "
            f"Krippendorff's alpha {agreement['krippendorff_alpha']:.3f}",
            highlight=False,
        )

    @review.command("requeue-disagreements")
    def requeue(
        k: Annotated[int, typer.Option("--k", help="Labels each adjudication item needs.")] = 1,
        json_: JsonOpt = False,
    ) -> None:
        """Queue done items whose labels disagree again, for adjudication (once each)."""
        from rewardkit.store.engine import session_scope
        from rewardkit.store.review import requeue_disagreements

        with session_scope(_open()) as s:
            n = requeue_disagreements(s, now=datetime.now(UTC), needed=k)
        _say(json_, {"queued": n}, f"queued {n} items for adjudication")

    @review.command("export")
    def export(
        fmt: Annotated[str, typer.Option("--format", help="labelstudio | argilla.")],
        out: Annotated[Path, typer.Option("--out", help="JSON file to write.")],
        status: Annotated[str, typer.Option(help="open | done | all.")] = "open",
    ) -> None:
        """Export queue items as Label Studio tasks (pairwise) or Argilla records."""
        import json

        from rewardkit.atomic import atomic_file
        from rewardkit.review.interop import argilla_records, labelstudio_tasks
        from rewardkit.store.review import iter_items

        if fmt not in ("labelstudio", "argilla"):
            raise UserError(f"--format: expected labelstudio or argilla, got {fmt!r}")
        if status not in ("open", "done", "all"):
            raise UserError(f"--status: expected open, done or all, got {status!r}")
        with _open()() as s:
            items = list(iter_items(s, status=None if status == "all" else status))
            rows = labelstudio_tasks(items) if fmt == "labelstudio" else argilla_records(items)
        with atomic_file(out) as tmp:
            tmp.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        stdout.print(f"wrote {len(rows)} {fmt} entries -> {out}", highlight=False)

    @review.command("import")
    def import_(
        fmt: Annotated[str, typer.Option("--format", help="labelstudio | argilla.")],
        path: Annotated[Path, typer.Argument(help="The tool's JSON export of completed annotations.")],
        json_: JsonOpt = False,
    ) -> None:
        """Import completed Label Studio / Argilla annotations as comparisons (annotator kind human, source review)."""
        from rewardkit.review.interop import InteropError, import_argilla, import_labelstudio
        from rewardkit.store.engine import session_scope
        from rewardkit.store.queries import add_comparisons

        if fmt not in ("labelstudio", "argilla"):
            raise UserError(f"--format: expected labelstudio or argilla, got {fmt!r}")
        try:
            comparisons = import_labelstudio(path) if fmt == "labelstudio" else import_argilla(path)
        except InteropError as exc:
            raise UserError(str(exc)) from None
        with session_scope(_open()) as s:
            result = add_comparisons(s, comparisons)
        _say(
            json_,
            {"imported": result.inserted, "duplicates": result.duplicates},
            f"imported {result.inserted} comparisons ({result.duplicates} already stored)",
        )
