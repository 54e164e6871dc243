"""``anthropic``: the Messages API.

``POST {base_url}/v1/messages`` with ``x-api-key`` (``ANTHROPIC_API_KEY``) and
``anthropic-version: 2023-06-01``; the system prompt, one user message holding the canonical
request JSON, ``max_tokens`` and ``temperature: 0``. The verdict is the first text block of
``content`` read as ``{"verdict", "reasons"}``. ``base_url`` defaults to
``TRADEASSIST_ANTHROPIC_BASE_URL`` else https://api.anthropic.com; ``model`` to
``TRADEASSIST_ANTHROPIC_MODEL`` else ``DEFAULT_MODEL``.

A review waits at most ``deadline`` (default 120 s, or ``timeout`` if longer) in all:
connecting, every retry, the answer's headers and body, however slowly they come; any one
read at most ``timeout`` (default 120 s). Past the deadline: ``HttpTimeout``.
"""

from __future__ import annotations

from typing import Any

from ...core.config import secret, settings
from ...core.errors import ConfigError, ProviderError
from ..http import HttpClient, HttpPolicy
from .base import (
    SYSTEM_PROMPT,
    ReviewRequest,
    ReviewVerdict,
    llm_policy,
    llm_verdict,
    post_json,
    user_prompt,
)

NAME = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-4-5"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_TIMEOUT = 120.0  # seconds any one read may wait (a model may think for a while)
DEFAULT_DEADLINE = 120.0  # seconds for the whole review: connect, retries, headers, body


class AnthropicReviewer:
    name = NAME

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        policy: HttpPolicy | None = None,
        client: HttpClient | None = None,
    ) -> None:
        env = settings()
        self.base_url = (base_url or env.anthropic_base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or env.anthropic_model or DEFAULT_MODEL
        self._api_key = api_key or secret(env.anthropic_api_key) or None
        self.max_tokens = max_tokens
        total = deadline if deadline is not None else max(DEFAULT_DEADLINE, timeout)
        self._client = client or HttpClient(policy or llm_policy(timeout, total), secrets=[self._api_key])

    def __repr__(self) -> str:  # never the key
        return f"AnthropicReviewer(base_url={self.base_url!r}, model={self.model!r})"

    def request_body(self, request: ReviewRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": user_prompt(request)}],
            "temperature": 0,
        }

    def review(self, request: ReviewRequest) -> ReviewVerdict:
        where = f"{NAME} reviewer ({self.model})"
        if not self._api_key:
            raise ConfigError(f"{where}: set ANTHROPIC_API_KEY")
        headers = {"x-api-key": self._api_key, "anthropic-version": API_VERSION}
        body = post_json(
            self._client,
            f"{self.base_url}/v1/messages",
            body=self.request_body(request),
            headers=headers,
            secret=self._api_key,
            where=where,
        )
        return llm_verdict(request, provider=NAME, model=self.model, text=_text(body, where), body=body)


def _text(body: dict[str, Any], where: str) -> str:
    if body.get("stop_reason") == "max_tokens":
        raise ProviderError(f"{where}: the answer was cut off at max_tokens (raise it)")
    if body.get("stop_reason") == "refusal":
        raise ProviderError(f"{where}: the model refused to answer")
    content = body.get("content")
    if not isinstance(content, list):
        raise ProviderError(f"{where}: the answer has no content")
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            return block["text"]
    raise ProviderError(f"{where}: the answer has no text block")
