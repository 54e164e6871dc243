"""What is wrong with a batch, gathered so that one refusal names every entry at fault."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ...core.errors import FileFormatError, LedgerError
from .model import NewEntry


class Problems:
    """Problems named by where they are: (source file, line) for file rows, else a label."""

    def __init__(self, entries: Sequence[NewEntry]) -> None:
        self.entries = entries
        self.items: list[tuple[str | None, int | None, str]] = []

    def new(self, index: int, reason: str) -> None:
        e = self.entries[index]
        if e.source is not None:
            self.items.append((e.source, e.line, reason))
        else:
            self.items.append((None, None, f"entry {index + 1}: {reason}"))

    def key(self, key: int, reason: str, existing: Mapping[int, datetime] | None = None) -> None:
        if key < 0:
            self.new(-key - 1, reason)
        else:
            when = f" ({existing[key]:%Y-%m-%d})" if existing and key in existing else ""
            self.items.append((None, None, f"ledger entry {key}{when}: {reason}"))

    def other(self, source: str | None, line: int | None, reason: str) -> None:
        self.items.append((source, line, reason))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        sources = list(dict.fromkeys(s for s, _, _ in self.items if s is not None))
        if sources:
            if len(sources) == 1:
                problems = [(ln, why) if s is not None else (None, why) for s, ln, why in self.items]
            else:
                problems = [
                    (None, f"{s} line {ln}: {why}" if s is not None and ln else why)
                    for s, ln, why in self.items
                ]
            raise FileFormatError(" + ".join(sources), problems)
        reasons = [why for _, _, why in self.items]
        more = f" (and {len(reasons) - 20} more)" if len(reasons) > 20 else ""
        raise LedgerError("refused: " + "; ".join(reasons[:20]) + more, problems=reasons)
