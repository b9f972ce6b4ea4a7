"""A command group that imports a command's module only when that command runs (or its help is asked for).

``rewardkit loop tick`` runs every few minutes from cron and must finish well under a second; importing every
command module up front (scoring, evaluation, the service's schemas, the importers' formats) cost about 0.6 s
before the tick did anything. The group knows each command by name and module, and builds it on first use by
calling the module's ``register(app)`` on a throw-away Typer, so the command modules stay exactly as they were.

``commands`` (click's attribute) still holds every command: reading it loads them all, which is what help-wide
tools and tests want; ``get_command`` and ``list_commands``, the paths click takes to run one command, load only
that one.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import typer
import typer.core
import typer.main


class LazyCommands(typer.core.TyperGroup):
    """A TyperGroup whose commands come from ``modules`` (command name -> module with ``register(app)``), in order."""

    modules: Mapping[str, str] = {}
    freeze_imports = False  # set by the console script's entry (see ``_imports``)

    @property  # type: ignore[override]
    def commands(self) -> MutableMapping[str, Any]:
        for name in self.modules:
            self._load(name)
        return self._loaded

    @commands.setter
    def commands(self, value: MutableMapping[str, Any]) -> None:
        self._loaded = value

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.modules, *(name for name in self._loaded if name not in self.modules)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.modules:
            return self._load(cmd_name)
        return self._loaded.get(cmd_name)

    def _load(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        # a callback keeps typer from collapsing a one-command app into that command: we want a group to take from
        holder.callback()(_no_op)
        with _imports(self.freeze_imports):
            module = importlib.import_module(self.modules[name])
        module.register(holder)
        built = typer.main.get_command(holder).commands  # type: ignore[attr-defined]
        if name not in built:  # the registry in cli/main.py names a command its module does not register
            raise RuntimeError(f"{self.modules[name]}.register() added {sorted(built)}, not the command {name!r}")
        command = built[name]
        _inherit_markup(command, self.rich_markup_mode)
        self._loaded[name] = command
        return command


@contextmanager
def _imports(freeze: bool) -> Iterator[None]:
    """With ``freeze``: the cyclic garbage collector off while a command's module (and what it imports) loads,
    then everything loaded moved out of its reach (``gc.freeze``). Modules live as long as the process, yet the
    collector walked them again and again: 0.1 s of an idle ``loop tick``'s 0.8 s of CPU. Only for a process of
    its own (``cli.main.run``): frozen objects are never collected, so a test process invoking commands in-process
    keeps its collector as it was."""
    if not freeze:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _no_op() -> None:
    """(the throw-away app's callback)"""


def _inherit_markup(command: Any, mode: Any) -> None:
    """Give ``command`` and its subcommands the group's help layout, which ``cli.main.plain_help`` set before the
    command was loaded."""
    command.rich_markup_mode = mode
    for sub in getattr(command, "commands", {}).values():
        _inherit_markup(sub, mode)
