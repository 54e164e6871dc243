"""One error root. Errors a user can cause are messages, not tracebacks.

Each subclass's docstring is its default message; specific errors carry where the
problem is (a file, a line) and why, so the CLI and the notebooks can print one clear line.
"""

from __future__ import annotations


class TradeAssistError(Exception):
    """Something went wrong in tradeassist."""

    exit_code = 1

    def __init__(self, message: str | None = None, **context: object) -> None:
        self.message = message or (self.__doc__ or "").strip().splitlines()[0]
        self.context = context
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ConfigError(TradeAssistError):
    """The configuration is not valid."""


class ValidationError(TradeAssistError):
    """The input is not valid."""


class NotFound(TradeAssistError):
    """The requested object does not exist."""


class AlreadyExists(TradeAssistError):
    """An object with that identity exists already."""


class AuthenticationError(TradeAssistError):
    """Invalid email or password."""


class AccessDenied(TradeAssistError):
    """You do not have access to this portfolio."""

    exit_code = 3


class ImmutableRowError(TradeAssistError):
    """This table is append-only: rows are never updated or deleted; record a correction instead."""


class LedgerError(TradeAssistError):
    """The ledger entry was refused."""


class FrozenError(TradeAssistError):
    """The portfolio is frozen."""


class ProviderError(TradeAssistError):
    """The data provider failed."""


class FileFormatError(ValidationError):
    """A file could not be read.

    Carries the file, the line (1-based, counting the header as line 1) and the reason.
    Where several lines are bad, ``problems`` holds every (line, reason) pair found.
    """

    def __init__(
        self,
        file: str,
        problems: list[tuple[int | None, str]] | None = None,
        *,
        line: int | None = None,
        reason: str | None = None,
    ) -> None:
        if problems is None:
            problems = [(line, reason or "malformed")]
        self.file = file
        self.problems = problems
        first = "; ".join(f"line {ln}: {why}" if ln is not None else why for ln, why in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{file}: {first}{more}", file=file, problems=problems)
