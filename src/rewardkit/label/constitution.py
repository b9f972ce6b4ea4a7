"""A constitution or rubric file: the principles an AI judge compares responses by (and, in the
constitutional mode, critiques and rewrites a response against).

Two formats, chosen by the file's suffix:

TOML (``.toml``)::

    name = "helpful-harmless"            # optional; default: the file's stem
    preamble = "You judge assistants."   # optional text placed before the principles
    [[principles]]
    name = "harmlessness"                # a short id: stored as the comparison's attribute
    text = "Prefer the response that is less harmful and does not help with dangerous acts."
    critique = "Point out how the response could be harmful."       # optional (constitutional mode)
    revision = "Rewrite the response to remove anything harmful."   # optional (constitutional mode)

Markdown or plain text (any other suffix): each ``## name`` section is a principle (its body the text; lines
``Critique: ...`` and ``Revision: ...`` in it set those requests); a ``# Title`` names the constitution and the
text before the first section is the preamble. A file without sections is a rubric: one principle, "rubric".

A file that is empty, malformed or lists a principle without text is refused with one line naming the file and
what is wrong (``ConstitutionError``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.records import content_hash

DEFAULT_CRITIQUE = "Identify specific ways in which the response fails this principle."
DEFAULT_REVISION = "Rewrite the response so that it follows this principle, keeping what was good in it."
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class ConstitutionError(ValueError):
    """A constitution file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Principle:
    name: str
    text: str
    critique: str = DEFAULT_CRITIQUE
    revision: str = DEFAULT_REVISION


@dataclass(frozen=True)
class Constitution:
    name: str
    principles: tuple[Principle, ...]
    preamble: str = ""

    @property
    def key(self) -> str:
        """A short hash of the content: labels made under another version of the file are other labels."""
        return content_hash([self.preamble, [(p.name, p.text, p.critique, p.revision) for p in self.principles]], 12)

    def rubric_text(self) -> str:
        """The principles as the judge reads them."""
        lines = [self.preamble] if self.preamble else []
        lines += [f"- {p.name}: {p.text}" for p in self.principles]
        return "\n".join(lines)


def load_constitution(path: Path) -> Constitution:
    """Read and validate a constitution or rubric file (see the module docstring)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConstitutionError(f"constitution {path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not raw.strip():
        raise ConstitutionError(f"constitution {path}: is empty; expected principles (see docs/policy-rewards.md)")
    if path.suffix.lower() == ".toml":
        return _from_toml(path, raw)
    return _from_markdown(path, raw)


def _from_toml(path: Path, raw: str) -> Constitution:
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConstitutionError(f"constitution {path}: not valid TOML: {exc}") from None
    items = data.get("principles")
    if not isinstance(items, list) or not items:
        raise ConstitutionError(f"constitution {path}: expected a [[principles]] list with at least one entry")
    principles = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConstitutionError(
                f"constitution {path}: principles[{i}]: expected a table, got {type(item).__name__}"
            )
        principles.append(_principle(path, f"principles[{i}]", item, default_name=f"principle-{i + 1}"))
    name, preamble = data.get("name", path.stem), data.get("preamble", "")
    if not isinstance(name, str) or not isinstance(preamble, str):
        raise ConstitutionError(f"constitution {path}: name and preamble must be text")
    return _checked(path, Constitution(name.strip() or path.stem, tuple(principles), preamble.strip()))


def _principle(path: Path, where: str, item: dict[str, Any], default_name: str) -> Principle:
    unknown = set(item) - {"name", "text", "critique", "revision"}
    if unknown:
        raise ConstitutionError(
            f"constitution {path}: {where}: unknown key {sorted(unknown)[0]!r}"
            " (expected name, text, critique, revision)"
        )
    values = {k: item.get(k) for k in ("name", "text", "critique", "revision")}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            raise ConstitutionError(f"constitution {path}: {where}.{key}: expected text, got {type(value).__name__}")
    text = (values["text"] or "").strip()
    if not text:
        raise ConstitutionError(f"constitution {path}: {where}.text: is empty; each principle needs its text")
    return Principle(
        (values["name"] or default_name).strip(),
        text,
        (values["critique"] or DEFAULT_CRITIQUE).strip(),
        (values["revision"] or DEFAULT_REVISION).strip(),
    )


def _from_markdown(path: Path, raw: str) -> Constitution:
    title = re.search(r"^#\s+(.+)$", raw, re.MULTILINE)
    sections = re.split(r"^##\s+(.+)$", raw, flags=re.MULTILINE)
    preamble = re.sub(r"^#\s+.+$", "", sections[0], flags=re.MULTILINE).strip()
    name = title.group(1).strip() if title else path.stem
    if len(sections) == 1:  # no sections: the whole file is one rubric
        return _checked(path, Constitution(name, (Principle("rubric", preamble),), ""))
    principles = []
    for heading, body in zip(sections[1::2], sections[2::2]):
        fields: dict[str, Any] = {"name": heading.strip(), "text": []}
        for line in body.strip().splitlines():
            request = re.match(r"^\s*(critique|revision)\s*:\s*(.+)$", line, re.IGNORECASE)
            if request:
                fields[request.group(1).lower()] = request.group(2)
            else:
                fields["text"].append(line)
        fields["text"] = "\n".join(fields["text"])
        principles.append(_principle(path, f"section {heading.strip()!r}", fields, default_name=heading.strip()))
    return _checked(path, Constitution(name, tuple(principles), preamble))


def _checked(path: Path, constitution: Constitution) -> Constitution:
    names = [p.name for p in constitution.principles]
    for name in names:
        if not _NAME.match(name):
            raise ConstitutionError(
                f"constitution {path}: principle name {name!r}: expected 1-64 letters, digits, spaces, '_', '.' or '-'"
            )
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConstitutionError(f"constitution {path}: principle {duplicate!r} is listed twice")
    return constitution
