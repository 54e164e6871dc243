"""Recommendation and manifesto reviewers, registered by name.

>>> from tradeassist.providers.reviewers import ReviewRequest, get_reviewer, reviewer_names
>>> reviewer_names()
('anthropic', 'builtin-rules', 'openai-compatible')
>>> policy = {"sleeve_targets": {"CORE": "1"}, "min_trade_base": "100",
...           "fee_per_trade_base": "1.50", "cash_buffer_base": "50"}
>>> request = ReviewRequest("manifesto", policy, manifesto="# Plan\\nCORE: a global tracker.\\n")
>>> verdict = get_reviewer().review(request)
>>> verdict.verdict.value, verdict.provider, verdict.model
('PASS', 'builtin-rules', 'rules-v2')

``get_reviewer(name=None, **options)`` builds a new instance; without a name it is
``TRADEASSIST_REVIEWER`` else ``builtin-rules`` (offline, deterministic). Options go to the
reviewer's constructor (``base_url``, ``model``, ``api_key``, ``timeout``, ``policy``...).
Before sending, a service computes ``request_hash(request, reviewer.name, reviewer.model)``
and looks for a stored verdict under it: the same request is never sent twice. A reviewer
raises ``ProviderError`` (``HttpError``/``HttpTimeout`` for transport failures) when it cannot
give a verdict, and ``ConfigError`` when a key or setting is missing: never a PASS by default.
"""

from __future__ import annotations

from collections.abc import Callable

from ...core.config import settings
from ...core.errors import ConfigError
from .anthropic import AnthropicReviewer
from .base import (
    KINDS,
    MANIFESTO,
    RECOMMENDATION,
    SYSTEM_PROMPT,
    Reviewer,
    ReviewRequest,
    ReviewVerdict,
    parse_verdict_text,
    request_hash,
    user_prompt,
)
from .builtin import BuiltinRulesReviewer, ManifestoRules, parse_manifesto_rules
from .openai_compat import OpenAICompatibleReviewer

DEFAULT_REVIEWER = BuiltinRulesReviewer.name

_factories: dict[str, Callable[..., Reviewer]] = {
    BuiltinRulesReviewer.name: BuiltinRulesReviewer,
    OpenAICompatibleReviewer.name: OpenAICompatibleReviewer,
    AnthropicReviewer.name: AnthropicReviewer,
}


def default_reviewer_name() -> str:
    return (settings().reviewer or "").strip() or DEFAULT_REVIEWER


def get_reviewer(name: str | None = None, **options: object) -> Reviewer:
    """A new instance of the reviewer registered as ``name``; ``ConfigError`` if there is none."""
    chosen = (name or default_reviewer_name()).strip().lower()
    try:
        factory = _factories[chosen]
    except KeyError:
        known = ", ".join(reviewer_names())
        raise ConfigError(f"unknown reviewer {chosen!r}; known reviewers: {known}") from None
    return factory(**options)


def reviewer_names() -> tuple[str, ...]:
    return tuple(sorted(_factories))


def register_reviewer(name: str, factory: Callable[..., Reviewer]) -> None:
    _factories[name.strip().lower()] = factory


__all__ = [
    "DEFAULT_REVIEWER",
    "KINDS",
    "MANIFESTO",
    "RECOMMENDATION",
    "SYSTEM_PROMPT",
    "AnthropicReviewer",
    "BuiltinRulesReviewer",
    "ManifestoRules",
    "OpenAICompatibleReviewer",
    "ReviewRequest",
    "ReviewVerdict",
    "Reviewer",
    "default_reviewer_name",
    "get_reviewer",
    "parse_manifesto_rules",
    "parse_verdict_text",
    "register_reviewer",
    "request_hash",
    "reviewer_names",
    "user_prompt",
]
