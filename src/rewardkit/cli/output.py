"""How every command talks to people and machines.

- Results go to stdout: a readable rich rendering (lines never broken by rich, so pipes get one record per
  line), or one JSON document with ``--json``.
- Progress bars go to stderr and switch off when stderr is not a terminal (CI logs, pipes).
- A user's mistake raises ``UserError``; ``main.run`` prints it as one line and exits 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from rewardkit.progress import STDERR, progress_bar

# soft_wrap: a line is never broken at the console width. On a terminal the terminal wraps it; in a pipe
# (grep, awk, a log) a result stays one line instead of being cut at rich's default 80 columns.
# markup=False: text is printed as it is, so a path or message holding "[abc]" is not eaten as a style tag;
# the few lines that style themselves pass markup=True and ``escape`` what they interpolate.
stdout = Console(soft_wrap=True, markup=False)
stderr = STDERR  # the console progress bars draw on, so a line printed while one runs does not tear it


__all__ = ["UserError", "emit_json", "escape", "progress_bar", "stderr", "stdout"]


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, bad option). Printed without a traceback."""


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")
