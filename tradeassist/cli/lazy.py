"""The top-level command group that imports a command's module only when that command runs.

``tradeassist --help`` lists every command from a table (name -> module, one-line help) without
importing any command module, and so none of the services, SQLAlchemy, Alembic or numpy behind
them. ``tradeassist NAME ...`` imports NAME's module, lets its ``register`` add its commands to a
scratch Typer, and runs the command Typer builds from it: the same command, options and full
help as if it had been registered up front. ``tests/test_cli_startup.py`` checks the table
against what the modules register.

Typer 0.2x prints each parameter's Python type in help (``<str>``, ``<bool>`` beside every
flag, ``--help`` included); ``plain_types`` shows click's names instead (TEXT, INTEGER, PATH)
and nothing beside a flag.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup


class LazyCommand(NamedTuple):
    module: str  # under tradeassist.cli; its register(app) adds the command
    help: str  # one line, for the command list


class LazyGroup(TyperGroup):
    """A TyperGroup whose ``lazy_commands`` are imported on first use (set on a subclass)."""

    lazy_commands: Mapping[str, LazyCommand] = {}
    package = __package__ or "tradeassist.cli"

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        plain_types(self)

    def list_commands(self, ctx: Any) -> list[str]:
        eager = [name for name in self.commands if name not in self.lazy_commands]
        return [*eager, *self.lazy_commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.lazy_commands.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the command list needs the name and one line only
            return TyperCommand(cmd_name, help=entry.help, short_help=entry.help)
        return self.load(cmd_name)

    def load(self, cmd_name: str) -> Any:
        """Import the command's module and build its commands (all of them, cached)."""
        entry = self.lazy_commands[cmd_name]
        module = importlib.import_module(f"{self.package}.{entry.module}")
        scratch = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        module.register(scratch)
        for name, command in typer.main.get_group(scratch).commands.items():
            plain_types(command)
            self.commands.setdefault(name, command)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:
            # Typer suggests a close match among the commands built so far; offer them all.
            message = getattr(exc, "message", None)
            if isinstance(message, str) and args and "Did you mean" not in message:
                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                if matches and getattr(self, "suggest_commands", True):
                    suggestions = ", ".join(repr(match) for match in matches)
                    error: Any = exc
                    error.message = f"{message.rstrip('.')}. Did you mean {suggestions}?"
            raise


TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "Path": "PATH"}


def _plain_label(label: str) -> str:
    """``<str>`` -> ``TEXT``, ``<list[int]>`` -> ``INTEGER``, ``<a|b>`` -> ``[a|b]``."""
    inner = label.removeprefix("<").removesuffix(">")
    if inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    if "|" in inner:
        return f"[{inner}]"
    return TYPE_NAMES.get(inner, inner.upper())


def _plain_parameter(param: Any) -> None:
    shown = getattr(param, "display_type_rich", None)
    if shown is None or getattr(param, "_plain_type", False):
        return  # a Typer that shows no <type> markers, or done already

    def display_type_rich(ctx: Any) -> str | None:
        text = shown(ctx)
        if param.metavar is not None or not text:
            return text
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            return ""
        suffix = "..." if text.endswith("...") else ""
        return _plain_label(text.removesuffix("...")) + suffix

    param.display_type_rich = display_type_rich
    param._plain_type = True


def plain_types(command: Any) -> None:
    """Click's type names in ``command``'s help and its sub-commands', ``--help`` included."""
    for param in command.params:
        _plain_parameter(param)
    get_help_option = getattr(command, "get_help_option", None)
    if get_help_option is not None and not getattr(command, "_plain_help_option", False):

        def plain_help_option(ctx: Any) -> Any:
            option = get_help_option(ctx)
            if option is not None:
                _plain_parameter(option)
            return option

        command.get_help_option = plain_help_option
        command._plain_help_option = True
    for sub in getattr(command, "commands", {}).values():
        plain_types(sub)
