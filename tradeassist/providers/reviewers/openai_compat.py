"""``openai-compatible``: a chat completions API (OpenAI, or a local llama.cpp, Ollama or vLLM).

``POST {base_url}/chat/completions`` with the system prompt, the canonical request JSON as
the user message, ``response_format: {"type": "json_object"}`` and ``temperature: 0``. The
verdict is ``choices[0].message.content`` read as ``{"verdict", "reasons"}`` (a ```json
fence is tolerated). Settings: ``base_url`` from ``TRADEASSIST_LLM_BASE_URL`` (default
https://api.openai.com/v1; e.g. http://127.0.0.1:11434/v1 for Ollama, http://127.0.0.1:8080/v1
for llama.cpp), ``model`` from ``TRADEASSIST_LLM_MODEL`` (default gpt-4o-mini), the key from
``TRADEASSIST_LLM_API_KEY`` or ``OPENAI_API_KEY`` sent as ``Authorization: Bearer`` (a local
server may need none).

A review waits at most ``deadline`` (default 120 s, or ``timeout`` if longer) in all:
connecting, every retry, the answer's headers and body, however slowly they come; any one
read at most ``timeout`` (default 120 s). Past the deadline: ``HttpTimeout``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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

NAME = "openai-compatible"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 120.0  # seconds any one read may wait (a model may think for a while)
DEFAULT_DEADLINE = 120.0  # seconds for the whole review: connect, retries, headers, body


class OpenAICompatibleReviewer:
    name = NAME

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        max_tokens: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        policy: HttpPolicy | None = None,
        client: HttpClient | None = None,
    ) -> None:
        env = settings()
        self.base_url = (base_url or env.llm_base_url or DEFAULT_BASE_URL).rstrip("/")
        self.model = model or env.llm_model or DEFAULT_MODEL
        self._api_key = api_key or secret(env.llm_api_key) or secret(env.openai_api_key) or None
        self.max_tokens = max_tokens
        total = deadline if deadline is not None else max(DEFAULT_DEADLINE, timeout)
        self._client = client or HttpClient(policy or llm_policy(timeout, total), secrets=[self._api_key])

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatibleReviewer(base_url={self.base_url!r}, model={self.model!r})"

    def request_body(self, request: ReviewRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_prompt(request)},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def review(self, request: ReviewRequest) -> ReviewVerdict:
        where = f"{NAME} reviewer ({self.model})"
        if not self._api_key and urlsplit(self.base_url).hostname == "api.openai.com":
            raise ConfigError(f"{where}: set TRADEASSIST_LLM_API_KEY or OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = post_json(
            self._client,
            f"{self.base_url}/chat/completions",
            body=self.request_body(request),
            headers=headers,
            secret=self._api_key,
            where=where,
        )
        return llm_verdict(request, provider=NAME, model=self.model, text=_content(body, where), body=body)


def _content(body: dict[str, Any], where: str) -> str:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProviderError(f"{where}: the answer has no choices")
    choice = choices[0]
    found = choice.get("message")
    message: dict[str, Any] = found if isinstance(found, dict) else {}
    if message.get("refusal"):
        raise ProviderError(f"{where}: the model refused: {str(message['refusal'])[:200]}")
    if choice.get("finish_reason") == "length":
        raise ProviderError(f"{where}: the answer was cut off at the token limit (raise max_tokens)")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ProviderError(f"{where}: choices[0].message.content is empty")
    return content
