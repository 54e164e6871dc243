"""Secrets out of a run's artefacts and records: what the runner stores is masked first.

Which values are secrets is ``core.redaction`` (``secret_values``); here they are removed from
free text (an error) and from JSON-like values (a notebook, a summary, a snapshot).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.redaction import MASK, redact


def scrub_text(text: str | None, secrets: Iterable[str]) -> str | None:
    """Free text (an error) safe to store: secret values and secret-looking URL parts masked."""
    return None if text is None else redact(text, secrets)


def strip_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-like value (a notebook, a summary) with every secret *value* masked in its strings.

    Only exact values are replaced: patterns would mangle embedded code such as plotly.js.
    """
    ordered = sorted(set(secrets), key=len, reverse=True)
    if not ordered:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for secret in ordered:
                if secret in item:
                    item = item.replace(secret, MASK)
            return item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)
