"""What a reviewer is given, what it answers, and the parts the LLM reviewers share.

A reviewer checks a recommendation (or a strategy's manifesto) and answers PASS, WARN or
FAIL with reasons. The request is a frozen plain-JSON value; ``request_hash`` names it with
the provider and model, so the service stores each verdict under it and never sends the
same request twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ...core.enums import Verdict
from ...core.errors import ProviderError, ValidationError
from ...core.frozen import freeze
from ...core.jsonutil import canonical_dumps, plain, sha256_of
from ..http import HttpError, HttpPolicy

RECOMMENDATION = "recommendation"
MANIFESTO = "manifesto"
KINDS = (RECOMMENDATION, MANIFESTO)


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """Everything a reviewer may look at, as plain values (decimals as strings).

    ``recommendation`` is the engine's ``Recommendation.to_json_dict()`` (``headline``,
    ``rationale``, ``constraints_report``, ``lines``); ``policy`` the policy as a plain dict
    (``policy_to_dict``); ``manifesto`` its markdown; ``task_kind`` the run's kind
    (MONTHLY_ALLOC, QUARTERLY_REBAL, WEEKLY_REVIEW...); ``portfolio_frozen`` the portfolio's
    freeze flag. A ``manifesto`` review needs no recommendation.
    """

    kind: str
    policy: Mapping[str, Any]
    manifesto: str = ""
    recommendation: Mapping[str, Any] | None = None
    task_kind: str | None = None
    portfolio_frozen: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"review: kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if not isinstance(self.policy, Mapping):
            raise ValidationError("review: the policy must be a mapping (policy_to_dict)")
        if self.kind == RECOMMENDATION and not isinstance(self.recommendation, Mapping):
            raise ValidationError("review: a recommendation review needs the recommendation")
        if not isinstance(self.manifesto, str):
            raise ValidationError("review: the manifesto must be text")
        object.__setattr__(self, "policy", freeze(self.policy))
        if self.recommendation is not None:
            object.__setattr__(self, "recommendation", freeze(self.recommendation))
        if self.task_kind is not None:
            object.__setattr__(self, "task_kind", str(plain(self.task_kind)))
        object.__setattr__(self, "portfolio_frozen", bool(self.portfolio_frozen))

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "task_kind": self.task_kind,
            "portfolio_frozen": self.portfolio_frozen,
            "policy": plain(self.policy),
            "manifesto": self.manifesto,
            "recommendation": plain(self.recommendation),
        }


def request_hash(request: ReviewRequest, provider: str, model: str) -> str:
    """SHA-256 (hex) of the canonical JSON of the request with the provider and model."""
    return sha256_of({"provider": provider, "model": model, "request": request.to_json_dict()})


@dataclass(frozen=True, slots=True)
class ReviewVerdict:
    """A reviewer's answer. ``response_json`` is what to store (the provider's whole answer)."""

    provider: str
    model: str
    verdict: Verdict
    reasons: tuple[str, ...]
    response_json: dict[str, Any] = field(hash=False)
    request_hash: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "reasons", tuple(str(r) for r in self.reasons))
        # A private copy: the caller's dict cannot change a verdict after the fact.
        object.__setattr__(self, "response_json", json.loads(canonical_dumps(plain(self.response_json))))


@runtime_checkable
class Reviewer(Protocol):
    name: str
    model: str

    def review(self, request: ReviewRequest) -> ReviewVerdict: ...


# --------------------------------------------------------------------------------------------
# Shared by the LLM reviewers
# --------------------------------------------------------------------------------------------
SYSTEM_PROMPT = """\
You are the reviewer in a UK DIY investor's trading assistant. You check, you do not advise.
You receive one JSON request:
- kind "recommendation": check the proposed trades (recommendation.lines, with the
  recommendation's rationale and constraints_report) against the policy (sleeve targets,
  drift bands, min_trade_base, fee_per_trade_base, cash_buffer_base, whole_units,
  allow_sells per task kind), the portfolio_frozen flag and every rule stated in the
  manifesto. Lines with suppressed_by_min_trade true are not executed.
- kind "manifesto": check that the manifesto is coherent, consistent with the policy and
  covers every sleeve of the policy.
Amounts are GBP; numbers are written as strings.
Answer with one JSON object and nothing else:
{"verdict": "PASS" | "WARN" | "FAIL", "reasons": ["...", "..."]}
FAIL when a stated rule is broken, WARN for soft concerns, PASS otherwise.
Each reason is one short sentence naming the line, rule or figure concerned."""


def user_prompt(request: ReviewRequest) -> str:
    return (
        f"Review this {request.kind}. The request, as canonical JSON:\n"
        f"{canonical_dumps(request.to_json_dict())}"
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def parse_verdict_text(text: str, *, provider: str, model: str) -> tuple[Verdict, tuple[str, ...]]:
    """The verdict and reasons from a model's answer: a JSON object, possibly in a ```json fence.

    Anything else (prose, a missing or unknown verdict, reasons that are not strings) is a
    ``ProviderError``: an answer that cannot be read is never taken for a PASS.
    """
    where = f"{provider} ({model})"
    stripped = text.strip()
    fenced = _FENCE.search(stripped)
    candidate = fenced.group(1).strip() if fenced else stripped
    shown = " ".join(stripped.split())[:200]
    try:
        data = json.loads(candidate)
    except ValueError:
        raise ProviderError(f"{where}: the answer is not a JSON verdict: {shown!r}") from None
    if not isinstance(data, dict):
        raise ProviderError(f"{where}: the answer is not a JSON object: {shown!r}")
    raw = data.get("verdict")
    verdict = raw.strip().upper() if isinstance(raw, str) else None
    if verdict not in {v.value for v in Verdict}:
        raise ProviderError(f"{where}: the answer's verdict {raw!r} is not PASS, WARN or FAIL")
    reasons = data.get("reasons", [])
    if isinstance(reasons, str):
        reasons = [reasons]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ProviderError(f"{where}: the answer's reasons are not a list of strings")
    reasons = [r.strip() for r in reasons if r.strip()]
    if verdict != Verdict.PASS and not reasons:
        raise ProviderError(f"{where}: a {verdict} verdict came without reasons")
    return Verdict(verdict), tuple(reasons)


def llm_policy(timeout: float, deadline: float | None = None) -> HttpPolicy:
    """``timeout`` bounds each read (a model may think for a while); connecting is quicker."""
    return HttpPolicy(
        connect_timeout=min(10.0, timeout),
        read_timeout=timeout,
        write_timeout=min(30.0, timeout),
        pool_timeout=min(10.0, timeout),
        deadline=deadline if deadline is not None else 2 * timeout + 60,
        max_attempts=4,
        max_total_wait=60.0,
    )


def rewrap(exc: HttpError, where: str) -> HttpError:
    """The same error (class, status, redacted body) with the reviewer named first."""
    return type(exc)(
        f"{where}: {exc.message}", url=exc.url, status=exc.status, attempts=exc.attempts, body=exc.body
    )


def response_object(content: bytes, where: str) -> dict[str, Any]:
    try:
        body = json.loads(content)
    except ValueError:
        shown = " ".join(content[:200].decode("utf-8", "replace").split())
        raise ProviderError(f"{where}: the server's answer is not JSON: {shown!r}") from None
    if not isinstance(body, dict):
        raise ProviderError(f"{where}: the server's answer is not a JSON object")
    return body


def post_json(
    client: Any,
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    secret: str | None,
    where: str,
) -> dict[str, Any]:
    """POST a request to an LLM API and return its JSON object; errors name ``where``, never the key."""
    error: HttpError | None = None
    try:
        response = client.post(url, json=body, headers=dict(headers), secrets=[secret] if secret else [])
    except HttpError as exc:
        error = rewrap(exc, where)
    if error is not None:
        raise error  # outside the except block, so the unredacted original is not chained
    return response_object(response.content, where)


def llm_verdict(
    request: ReviewRequest, *, provider: str, model: str, text: str, body: dict[str, Any]
) -> ReviewVerdict:
    """A verdict parsed from the model's answer text, with the whole response kept."""
    verdict, reasons = parse_verdict_text(text, provider=provider, model=model)
    return ReviewVerdict(
        provider=provider,
        model=model,
        verdict=verdict,
        reasons=reasons,
        response_json=body,
        request_hash=request_hash(request, provider, model),
    )
