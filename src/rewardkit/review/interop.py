"""Exchange the queue with Label Studio and Argilla, for teams that already run them.

**Label Studio** (pairwise): ``export_labelstudio`` writes a JSON list of tasks
``{"data": {"prompt", "answer1", "answer2", "rk_item_id", "rk_prompt"}}`` for this labeling config
(``LABEL_STUDIO_CONFIG``, the Pairwise tag over two Text tags)::

    <View><Header value="$prompt"/><Pairwise name="comparison" toName="answer1,answer2"/>
      <Text name="answer1" value="$answer1"/><Text name="answer2" value="$answer2"/></View>

``import_labelstudio`` reads Label Studio's JSON export of those tasks: each non-cancelled annotation's
``pairwise`` result (``value.selected`` = ``left`` | ``right``) becomes a comparison; the annotator is
``labelstudio:<completed_by>`` (an id, or the ``email`` when the export expands users).

**Argilla** (v2 records): ``export_argilla`` writes records ``{"id", "fields": {"prompt", "response_a",
"response_b"}, "metadata": {"rk_item_id"}}`` for a dataset with three TextFields and a LabelQuestion
``preference`` with labels a, b, tie, both_bad (``ARGILLA_SETTINGS``). ``import_argilla`` reads exported
records with submitted responses, in v2's form (``"responses": {"preference": [{"value", "user_id"}]}``) or
v1's (``"responses": [{"user_id", "values": {"preference": {"value"}}, "status"}]``).

Imported labels are comparisons like the page's: annotator kind human, source ``review``, metadata naming
the tool and the queue item; they do not fill queue slots (the tools run their own overlap).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardkit.records import Annotator, Comparison, PairwiseJudgement, RecordError, Response, prompt_text
from rewardkit.store.tables import ReviewItemRow

LABEL_STUDIO_CONFIG = """<View>
  <Header value="$prompt"/>
  <Pairwise name="comparison" toName="answer1,answer2"/>
  <Text name="answer1" value="$answer1"/>
  <Text name="answer2" value="$answer2"/>
</View>"""

ARGILLA_SETTINGS = {
    "fields": [{"name": n, "type": "text"} for n in ("prompt", "response_a", "response_b")],
    "questions": [{"name": "preference", "type": "label_selection", "labels": ["a", "b", "tie", "both_bad"]}],
    "metadata": [{"name": "rk_item_id", "type": "integer"}],
}


class InteropError(ValueError):
    """A file from Label Studio or Argilla that is not what the export wrote (names the entry and field)."""


def labelstudio_tasks(items: Iterable[ReviewItemRow]) -> list[dict[str, Any]]:
    return [
        {
            "data": {
                "prompt": prompt_text(item.prompt),
                "answer1": item.responses[0]["text"],
                "answer2": item.responses[1]["text"],
                "rk_item_id": item.id,
                "rk_prompt": item.prompt,
            }
        }
        for item in items
    ]


def argilla_records(items: Iterable[ReviewItemRow]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"rk-{item.id}",
            "fields": {
                "prompt": prompt_text(item.prompt),
                "response_a": item.responses[0]["text"],
                "response_b": item.responses[1]["text"],
            },
            "metadata": {"rk_item_id": item.id},
        }
        for item in items
    ]


def _load(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InteropError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".jsonl":
            data: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InteropError(f"{path}: not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise InteropError(f"{path}: expected a list of objects (Label Studio tasks or Argilla records)")
    return data


def _comparison(prompt: Any, a: str, b: str, choice: str, who: str, tool: str, meta: dict[str, Any]) -> Comparison:
    return Comparison(
        prompt=prompt,
        responses=(Response(a), Response(b)),
        judgement=PairwiseJudgement(choice),  # type: ignore[arg-type]
        annotator=Annotator(who, "human"),
        source="review",
        metadata={"tool": tool, **meta},
    )


def import_labelstudio(path: Path) -> list[Comparison]:
    out = []
    for n, task in enumerate(_load(path)):
        where = f"{path} task {n}"
        data = task.get("data")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("answer1", "answer2")):
            raise InteropError(f"{where}: field 'data': expected answer1 and answer2 texts")
        prompt = data.get("rk_prompt") or data.get("prompt")
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            selected = [
                r.get("value", {}).get("selected")
                for r in annotation.get("result") or []
                if isinstance(r, dict) and r.get("type") == "pairwise"
            ]
            if not selected:
                continue
            if selected[0] not in ("left", "right"):
                raise InteropError(f"{where}: field 'value.selected': expected left or right, got {selected[0]!r}")
            user = annotation.get("completed_by")
            who = user.get("email") or user.get("id") if isinstance(user, dict) else user
            meta = {"review_item_id": data.get("rk_item_id"), "seconds": annotation.get("lead_time")}
            try:
                out.append(
                    _comparison(
                        prompt,
                        data["answer1"],
                        data["answer2"],
                        "a" if selected[0] == "left" else "b",
                        f"labelstudio:{who}",
                        "labelstudio",
                        meta,
                    )
                )
            except RecordError as exc:
                raise InteropError(f"{where}: {exc}") from None
    return out


def _argilla_votes(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(user, value) of a record's submitted 'preference' responses, v2 or v1 layout."""
    responses = record.get("responses")
    if isinstance(responses, dict):  # v2: {question: [{"value", "user_id", "status"?}]}
        return [
            (str(r.get("user_id")), r.get("value"))
            for r in responses.get("preference") or []
            if r.get("status", "submitted") == "submitted"
        ]
    votes = []
    for r in responses or []:  # v1: [{"user_id", "values": {question: {"value"}}, "status"}]
        if r.get("status", "submitted") == "submitted":
            votes.append((str(r.get("user_id")), (r.get("values") or {}).get("preference", {}).get("value")))
    return votes


def import_argilla(path: Path) -> list[Comparison]:
    out = []
    for n, record in enumerate(_load(path)):
        where = f"{path} record {record.get('id', n)}"
        fields = record.get("fields")
        if not isinstance(fields, dict) or not all(
            isinstance(fields.get(k), str) for k in ("response_a", "response_b")
        ):
            raise InteropError(f"{where}: field 'fields': expected prompt, response_a and response_b texts")
        for user, value in _argilla_votes(record):
            if value not in ("a", "b", "tie", "both_bad"):
                raise InteropError(f"{where}: field 'preference': expected a, b, tie or both_bad, got {value!r}")
            meta = {"review_item_id": (record.get("metadata") or {}).get("rk_item_id")}
            try:
                out.append(
                    _comparison(
                        fields.get("prompt"),
                        fields["response_a"],
                        fields["response_b"],
                        value,
                        f"argilla:{user}",
                        "argilla",
                        meta,
                    )
                )
            except RecordError as exc:
                raise InteropError(f"{where}: {exc}") from None
    return out
