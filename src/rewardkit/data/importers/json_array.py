"""Stream the items of one JSON array (a ``.json`` file written by ``json.dump(rows)`` or pandas
``to_json(orient="records")``) from its bytes, one item at a time: ``json.loads(fh.read())`` held a few-GB array
whole, several times over, where JSON lines stream.

    for item in json_array_items(iter(lambda: fh.read(ARRAY_READ_BYTES), b"")): ...

``json.JSONDecoder.raw_decode`` runs over a sliding window of the decoded text, so memory follows the largest
item, not the array; errors carry json's own reason and position (``MalformedArray``), as ``json.loads`` of the
whole text would give them. The reader (``reader.py``) uses it for ``.json`` / ``.json.gz`` arrays.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

ARRAY_READ_BYTES = 1 << 20
"""Bytes per read of a JSON array: the array is parsed from a buffer of about this size (or of its largest item),
never from the whole file (``json.loads(fh.read())`` held a few-GB array several times over)."""
_BOM = b"\xef\xbb\xbf"
_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
_NEAR_END = 16
"""A value that ends, or an error found, this close to the end of the text read so far may be the buffer's cut,
not the file's (``12`` of ``12.5``, ``tr`` of ``true``, ``\\u12`` of ``\\u1234``): more is read first."""


class MalformedArray(ValueError):
    """A JSON array that is not valid JSON: where (the item being read, or after the array) and json's own
    reason and position, e.g. "item 3: not valid JSON: Expecting ',' delimiter: line 2 column 5 (char 17)"."""


def json_array_items(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The items of the JSON array whose UTF-8 bytes come in ``chunks`` (of any sizes), one at a time:
    ``json.JSONDecoder.raw_decode`` over a sliding window of the text, so memory follows the largest item, not
    the array. Yields what ``json.loads`` of the whole text holds; raises MalformedArray where it raises, with
    its reason and position (a byte position for bytes that are not UTF-8), also for anything but whitespace
    after the closing ``]``. A byte-order mark before the array is skipped, as ``utf-8-sig`` does."""
    text = _Window(_utf8_text(chunks))
    decode = json.JSONDecoder().raw_decode
    text.skip_space()
    if text.peek() != "[":
        raise text.error("expected a JSON array ('[')" if text.peek() else "Expecting value")
    text.i += 1
    text.skip_space()
    if text.peek() == "]":
        text.i += 1
    else:
        while True:
            yield text.value(decode)
            text.skip_space()
            mark = text.peek()
            if mark == "]":
                text.i += 1
                break
            if mark != ",":  # also the end of the text: json.loads says the same
                raise text.error("Expecting ',' delimiter")
            text.i += 1
            text.item += 1
            text.skip_space()
    text.where = "after the array's closing ']'"
    text.skip_space()
    if text.peek() or text.bad_byte is not None:
        raise text.error("Extra data")


class _Window:
    """The text of a stream from the first character not yet parsed (``buf[i]``) to what has been read, and
    enough about the text dropped before it (characters, newlines, where the last line began) to name a
    position as json does."""

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.buf, self.i, self.eof = "", 0, False
        self.base = self.lines = self.line_start = 0
        self.item = 1
        self.where = ""
        self.bad_byte: int | None = None  # where the text stopped being UTF-8: the text read ends there

    def more(self) -> bool:
        """Drop the parsed text and read at least as much again as is held unparsed (one chunk at least): an
        item larger than a chunk is parsed a few times, not once per chunk. False at the end of the stream."""
        if self.eof:
            return False
        dropped = self.buf.count("\n", 0, self.i)
        if dropped:
            self.lines += dropped
            self.line_start = self.base + self.buf.rfind("\n", 0, self.i) + 1
        kept = self.buf[self.i :]
        self.base += self.i
        pieces, size = [kept], 0
        while size < max(1, len(kept)):
            try:
                piece = next(self.source)
            except StopIteration:
                self.eof = True
                break
            except _NotUtf8 as exc:  # reported only if the parse needs text past it (see error)
                self.bad_byte, self.eof = exc.at, True
                break
            pieces.append(piece)
            size += len(piece)
        self.buf, self.i = "".join(pieces), 0
        return size > 0

    def peek(self) -> str:
        """The next character, '' at the end."""
        while self.i >= len(self.buf) and self.more():
            pass
        return self.buf[self.i : self.i + 1]

    def skip_space(self) -> None:
        while True:
            self.i = _SPACE.match(self.buf, self.i).end()  # type: ignore[union-attr]  # matches the empty string
            if self.i < len(self.buf) or not self.more():
                return

    def value(self, decode: Any) -> Any:
        """The JSON value at ``i``, read whole: when it, or its error, reaches the end of what is read (an
        unterminated string reaches it from where it starts), more is read and it is decoded again."""
        while True:
            try:
                value, end = decode(self.buf, self.i)
            except json.JSONDecodeError as exc:
                cut = exc.pos >= len(self.buf) - _NEAR_END or exc.msg.startswith("Unterminated string")
                if cut and not self.eof:
                    self.more()
                    continue
                raise self.error(exc.msg, exc.pos, cut) from None
            except RecursionError:  # nested deeper than Python's stack (json.loads raises the same)
                raise self.error("nested too deeply to read") from None
            if not self.eof and end >= len(self.buf) - _NEAR_END:
                self.more()
                continue
            self.i = end
            return value

    def place(self) -> str:
        return self.where or f"item {self.item}"

    def error(self, reason: str, at: int | None = None, cut: bool = False) -> MalformedArray:
        """json's message for an error at ``buf[at]`` (default ``i``): 'reason: line L column C (char P)'; the
        bytes that are not UTF-8 when the error is where the text read ends (``cut``: may be, see ``value``)."""
        at = self.i if at is None else at
        if self.bad_byte is not None and (cut or at >= len(self.buf)):
            return MalformedArray(f"{self.place()}: not UTF-8: invalid byte at byte {self.bad_byte}")
        last = self.buf.rfind("\n", 0, at)
        line = self.lines + self.buf.count("\n", 0, at) + 1
        column = at - last if last >= 0 else self.base + at - self.line_start + 1
        return MalformedArray(
            f"{self.place()}: not valid JSON: {reason}: line {line} column {column} (char {self.base + at})"
        )


class _NotUtf8(ValueError):
    def __init__(self, at: int) -> None:
        super().__init__(f"invalid UTF-8 at byte {at}")
        self.at = at


def _utf8_text(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of UTF-8 byte chunks (a character may be split between two), a leading BOM skipped; _NotUtf8,
    after the text before it, names the first bad byte's position in the whole stream, the BOM counted."""
    source = iter(chunks)
    head = b""
    for chunk in source:  # the BOM's three bytes may come in more than one chunk
        head += chunk
        if len(head) >= len(_BOM):
            break
    fed = len(_BOM) if head.startswith(_BOM) else 0  # bytes given to the decoder so far, and the BOM
    decoder = codecs.getincrementaldecoder("utf-8")()
    for piece in itertools.chain([head[fed:]], source, [None]):
        pending = decoder.getstate()[0]  # the start of a character split by the last chunk
        try:
            text = decoder.decode(piece or b"", final=piece is None)
        except UnicodeDecodeError as exc:
            # the text before the bad byte first: the items in it are read, and the error names the item it is in
            yield (pending + (piece or b""))[: exc.start].decode("utf-8")
            raise _NotUtf8(fed - len(pending) + exc.start) from None
        fed += len(piece or b"")
        if text:
            yield text
