"""Reviewers: the built-in rules table by table, and the LLM reviewers against local servers that
speak the OpenAI chat completions and Anthropic messages protocols with real-format bodies.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tests.support.http_server import RecordingServer, Reply, fast_policy, silent_server
from tradeassist.core.enums import Verdict
from tradeassist.core.errors import ConfigError, ProviderError, ValidationError
from tradeassist.core.jsonutil import canonical_dumps
from tradeassist.providers.http import HttpTimeout
from tradeassist.providers.reviewers import (
    SYSTEM_PROMPT,
    AnthropicReviewer,
    BuiltinRulesReviewer,
    OpenAICompatibleReviewer,
    ReviewRequest,
    ReviewVerdict,
    get_reviewer,
    parse_manifesto_rules,
    parse_verdict_text,
    request_hash,
    reviewer_names,
)

POLICY: dict[str, Any] = {
    "schema_version": 1,
    "sleeve_targets": {"CORE": "0.7", "SEMIS": "0.15", "ENERGY": "0.15"},
    "drift_bands": {"absolute": "0.05", "relative": "0.25"},
    "min_trade_base": "100",
    "fee_per_trade_base": "1.5",
    "cash_buffer_base": "50",
    "whole_units": True,
    "allow_sells": {"MONTHLY_ALLOC": False, "QUARTERLY_REBAL": True},
    "max_price_age_business_days": 5,
    "constituent_split": {"CORE": {"VWRP:LSE": "1"}, "SEMIS": {"SEMI:LSE": "1"}},
}

MANIFESTO = """# Investment manifesto

A long-term portfolio: CORE is a global tracker, SEMIS a semiconductor tilt and ENERGY a
clean-energy tilt. I add money monthly and rebalance quarterly.

## Rules
- Never sell: SEMIS
- max single trade: £5,000
* avoid: TSLA, ARKK:LSE
"""


def line(
    ticker: str,
    action: str,
    amount: str,
    units: str,
    *,
    suppressed: bool = False,
    exchange: str = "LSE",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "ticker": ticker,
        "exchange": exchange,
        "action": action,
        "amount_base": amount,
        "estimated_units": units,
        "suppressed_by_min_trade": suppressed,
        "reason_code": "MIN_TRADE" if suppressed else "DRIFT",
        **extra,
    }


def position(
    ticker: str,
    sleeve: str | None,
    units: str,
    price: str | None,
    *,
    exchange: str = "LSE",
    in_base: bool = True,
    targeted: bool = True,
) -> dict[str, Any]:
    """A holding as ``rationale["positions"]`` states it (value = units x price, None unpriced)."""
    value = None if price is None else str(Decimal(units) * Decimal(price))
    return {
        "ticker": ticker,
        "exchange": exchange,
        "sleeve": sleeve,
        "units": units,
        "price_gbp": price,
        "value_base": value,
        "in_base": in_base,
        "targeted": targeted,
    }


# What the default recommendation was computed from: £5,720 of holdings, every one in the base.
POSITIONS = [
    position("VWRP", "CORE", "40", "100.50"),
    position("SEMI", "SEMIS", "12", "75"),
    position("INRG", "ENERGY", "100", "8"),
]


def recommendation(**changes: Any) -> dict[str, Any]:
    base = {
        "headline": "Buy 3 VWRP and 2 SEMI",
        "rationale": {
            "drift_before": {"CORE": "-0.06", "SEMIS": "0.02", "ENERGY": "0.04"},
            "drift_after": {"CORE": "-0.01", "SEMIS": "0.01", "ENERGY": "0.00"},
            "positions": copy.deepcopy(POSITIONS),
        },
        "constraints_report": {
            "cash_available_base": "600",
            "cash_after_base": "145.50",
            "fees_base": "3.00",
        },
        "lines": [
            line("VWRP", "BUY", "301.50", "3"),
            line("SEMI", "BUY", "150.00", "2"),
            line("INRG", "BUY", "40.00", "5", suppressed=True),
        ],
    }
    base.update(changes)
    return base


def rec_request(
    rec: dict[str, Any] | None = None,
    *,
    task_kind: str | None = "MONTHLY_ALLOC",
    frozen: bool = False,
    manifesto: str = MANIFESTO,
    policy: dict[str, Any] | None = None,
) -> ReviewRequest:
    return ReviewRequest(
        "recommendation",
        policy or POLICY,
        manifesto=manifesto,
        recommendation=rec or recommendation(),
        task_kind=task_kind,
        portfolio_frozen=frozen,
    )


def report(available: str | None = None, after: str | None = None, fees: str | None = None) -> dict[str, str]:
    values = {"cash_available_base": available, "cash_after_base": after, "fees_base": fees}
    return {k: v for k, v in values.items() if v is not None}


# --------------------------------------------------------------------------------------------
# The request, its hash, the registry
# --------------------------------------------------------------------------------------------
def test_registry_and_default(monkeypatch) -> None:
    assert reviewer_names() == ("anthropic", "builtin-rules", "openai-compatible")
    monkeypatch.delenv("TRADEASSIST_REVIEWER", raising=False)
    assert isinstance(get_reviewer(), BuiltinRulesReviewer)
    monkeypatch.setenv("TRADEASSIST_REVIEWER", "openai-compatible")
    assert isinstance(get_reviewer(base_url="http://127.0.0.1:9/v1"), OpenAICompatibleReviewer)
    assert isinstance(get_reviewer("Anthropic"), AnthropicReviewer)
    with pytest.raises(ConfigError, match="unknown reviewer 'gpt'"):
        get_reviewer("gpt")


def test_request_hash_is_canonical_and_names_provider_and_model() -> None:
    first = rec_request()
    shuffled = ReviewRequest(
        "recommendation",
        dict(reversed(list(POLICY.items()))),
        manifesto=MANIFESTO,
        recommendation=dict(reversed(list(recommendation().items()))),
        task_kind="MONTHLY_ALLOC",
    )
    digest = request_hash(first, "openai-compatible", "gpt-4o-mini")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert request_hash(shuffled, "openai-compatible", "gpt-4o-mini") == digest
    assert request_hash(first, "openai-compatible", "llama3") != digest
    assert request_hash(first, "anthropic", "gpt-4o-mini") != digest
    assert request_hash(rec_request(frozen=True), "openai-compatible", "gpt-4o-mini") != digest
    assert (
        request_hash(rec_request(task_kind="QUARTERLY_REBAL"), "openai-compatible", "gpt-4o-mini") != digest
    )


def test_request_is_frozen_and_validated() -> None:
    rec = recommendation()
    request = rec_request(rec)
    rec["lines"].clear()  # the caller's dict changing later does not change the request
    assert len(request.to_json_dict()["recommendation"]["lines"]) == 3
    with pytest.raises(TypeError):
        request.policy["min_trade_base"] = "0"  # type: ignore[index]
    with pytest.raises(ValidationError, match="kind must be one of"):
        ReviewRequest("trade", POLICY)
    with pytest.raises(ValidationError, match="needs the recommendation"):
        ReviewRequest("recommendation", POLICY)


def test_verdict_keeps_a_private_copy_of_the_response() -> None:
    raw = {"verdict": "PASS", "reasons": []}
    verdict = ReviewVerdict("p", "m", "PASS", [], raw)
    raw["verdict"] = "FAIL"
    assert verdict.response_json == {"verdict": "PASS", "reasons": []}
    assert verdict.verdict is Verdict.PASS and verdict.reasons == ()


# --------------------------------------------------------------------------------------------
# builtin-rules: recommendations
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    request: Callable[[], ReviewRequest]
    verdict: Verdict
    fragments: tuple[str, ...] = ()


def _rec(**changes: Any) -> Callable[[], ReviewRequest]:
    kw = {k: changes.pop(k) for k in ("task_kind", "frozen", "manifesto", "policy") if k in changes}
    return lambda: rec_request(recommendation(**changes), **kw)


RECOMMENDATION_CASES = [
    Case("consistent monthly allocation", _rec(), Verdict.PASS, ("all checks hold",)),
    Case("frozen portfolio", _rec(frozen=True), Verdict.FAIL, ("the portfolio is frozen, yet 2 line(s)",)),
    Case(
        "frozen portfolio, no trades",
        _rec(frozen=True, lines=[], constraints_report=report("600", "600")),
        Verdict.PASS,
        ("no trades proposed",),
    ),
    Case(
        "sell in a monthly allocation",
        _rec(
            lines=[line("VWRP", "SELL", "301.50", "3"), line("SEMI", "BUY", "150.00", "2")],
            constraints_report=report("600", "748.50", "3"),
        ),
        Verdict.FAIL,
        ("#1 SELL VWRP:LSE £301.50: the policy does not allow MONTHLY_ALLOC to sell",),
    ),
    Case(
        "sell in a quarterly rebalance",
        _rec(
            task_kind="QUARTERLY_REBAL",
            lines=[line("VWRP", "SELL", "301.50", "3"), line("SEMI", "BUY", "450.00", "6")],
            constraints_report=report("250", "98.5"),
        ),
        Verdict.PASS,
    ),
    Case(
        "sell of a never-sell sleeve (known from the constituent split)",
        _rec(
            task_kind="QUARTERLY_REBAL",
            lines=[line("SEMI", "SELL", "300", "4"), line("VWRP", "BUY", "201", "2")],
            constraints_report=report("600", "696"),
        ),
        Verdict.FAIL,
        ("#1 SELL SEMI:LSE £300.00: the manifesto says never sell: SEMIS",),
    ),
    Case(
        "sell of a never-sell sleeve given on the line",
        _rec(
            task_kind="QUARTERLY_REBAL",
            lines=[line("SMH", "SELL", "300", "4", sleeve="SEMIS")],
            constraints_report=report("600", "898.5"),
        ),
        Verdict.FAIL,
        ("never sell: SEMIS",),
    ),
    Case(
        "sell whose sleeve is unknown (a recommendation that does not list its holdings)",
        _rec(
            task_kind="QUARTERLY_REBAL",
            rationale={},
            lines=[line("INRG", "SELL", "300", "40")],
            constraints_report=report("600", "898.5"),
        ),
        Verdict.WARN,
        (
            "#1 SELL INRG:LSE £300.00: its sleeve is not known",
            "'never sell: SEMIS' could not be checked",
            "does not list the holdings it was computed from",
        ),
    ),
    Case(
        "sell without a task kind",
        _rec(
            task_kind=None,
            lines=[line("VWRP", "SELL", "301.50", "3")],
            constraints_report=report("600", "900"),
        ),
        Verdict.WARN,
        ("cannot tell whether the policy allows selling",),
    ),
    Case(
        "an alert-only task never trades",
        _rec(task_kind="ALERT_ONLY"),
        Verdict.FAIL,
        ("ALERT_ONLY never trades, yet 2 line(s) would trade",),
    ),
    Case(
        "a weekly review with nothing to do",
        _rec(task_kind="WEEKLY_REVIEW", lines=[], constraints_report=report("600", "600")),
        Verdict.PASS,
    ),
    Case(
        "executed line below the minimum trade",
        _rec(lines=[line("VWRP", "BUY", "80.00", "1")], constraints_report=report("600", "518.5")),
        Verdict.FAIL,
        ("#1 BUY VWRP:LSE £80.00: below the minimum trade of £100.00",),
    ),
    Case(
        "suppressed line that reaches the minimum",
        _rec(
            lines=[line("VWRP", "BUY", "301.50", "3"), line("INRG", "BUY", "120", "15", suppressed=True)],
            constraints_report=report("600", "297"),
        ),
        Verdict.WARN,
        ("#2 BUY INRG:LSE £120.00: suppressed although it reaches the minimum of £100.00",),
    ),
    Case(
        "fractional units",
        _rec(lines=[line("VWRP", "BUY", "150.75", "1.5")], constraints_report=report("600", "447.75")),
        Verdict.FAIL,
        ("1.5 units is not a whole number",),
    ),
    Case(
        "cash left below the buffer",
        _rec(constraints_report=report("480")),
        Verdict.FAIL,
        ("the trades leave £25.50 cash, below the £50.00 buffer",),
    ),
    Case(
        "trades cost more than the money available",
        _rec(constraints_report=report("400")),
        Verdict.FAIL,
        ("the trades cost £451.50 plus £3.00 fees, more than the £400.00 available",),
    ),
    Case(
        "stated cash left disagrees with the lines",
        _rec(constraints_report=report("600", "200.00")),
        Verdict.WARN,
        ("the constraints report leaves £200.00 cash; the lines leave £145.50",),
    ),
    Case(
        "stated fees disagree with the policy",
        _rec(constraints_report=report("600", "145.50", "1.50")),
        Verdict.WARN,
        ("states fees of £1.50; 2 line(s) at £1.50 cost £3.00",),
    ),
    Case(
        "no cash figures",
        _rec(constraints_report={}),
        Verdict.WARN,
        ("states neither the cash available nor the cash left",),
    ),
    Case(
        "cash figures under _gbp names",
        _rec(constraints_report={"cash_available_gbp": "600", "cash_after_gbp": "145.5"}),
        Verdict.PASS,
    ),
    Case(
        "drift gets worse",
        _rec(rationale={"drift_before": "0.03", "drift_after": "-0.04"}),
        Verdict.FAIL,
        ("the drift after trading (0.04) exceeds the drift before (0.03)",),
    ),
    Case(
        "above the manifesto's max single trade",
        _rec(lines=[line("VWRP", "BUY", "5100.00", "51")], constraints_report=report("6000", "898.50")),
        Verdict.FAIL,
        ("#1 BUY VWRP:LSE £5,100.00: above the manifesto's max single trade of £5,000.00",),
    ),
    Case(
        "buying an avoided ticker",
        _rec(
            lines=[line("TSLA", "BUY", "250", "1", exchange="XNAS"), line("ARKK", "BUY", "200", "10")],
            constraints_report=report("600", "147"),
        ),
        Verdict.FAIL,
        (
            "#1 BUY TSLA:XNAS £250.00: the manifesto says avoid: TSLA",
            "#2 BUY ARKK:LSE £200.00: the manifesto says avoid",
        ),
    ),
    Case(
        "malformed lines",
        _rec(
            lines=[line("VWRP", "BUY", "abc", "3"), line("SEMI", "HOLD", "150", "2")],
            constraints_report=report("600", "600"),
        ),
        Verdict.FAIL,
        ("line #1 (VWRP:LSE): amount_base: 'abc' is not a number", "line #2 (SEMI:LSE): action 'HOLD'"),
    ),
    Case(
        "a manifesto rule that cannot be read",
        _rec(manifesto=MANIFESTO + "- max single trade: lots\n"),
        Verdict.WARN,
        ("manifesto line 10 (max single trade: lots): expected an amount", "that rule was not checked"),
    ),
    # The guard's own checks (rules-v2): from the holdings the recommendation lists.
    Case(
        "a holding counted with no price",
        _rec(rationale={"positions": [*POSITIONS, position("XDWL", "CORE", "12", None)]}),
        Verdict.FAIL,
        ("XDWL on LSE (12 units) is counted in the portfolio with no price",),
    ),
    Case(
        "sells above the turnover limit",
        _rec(
            task_kind="QUARTERLY_REBAL",
            lines=[line("VWRP", "SELL", "1608.00", "16"), line("SEMI", "BUY", "1500", "20")],
            constraints_report=report("600", "705"),
        ),
        Verdict.FAIL,
        ("the sells come to £1,608.00, more than the 25% of the portfolio (£1,580.00 of £6,320.00)",),
    ),
    Case(
        "a sleeve sold out",
        _rec(
            task_kind="QUARTERLY_REBAL",
            lines=[line("INRG", "SELL", "800", "100"), line("VWRP", "BUY", "804", "8")],
            constraints_report=report("600", "593"),
        ),
        Verdict.FAIL,
        ("the trades sell all of sleeve ENERGY (£800.00 before, nothing after)",),
    ),
    Case(
        "cash left idle by a monthly allocation",
        _rec(lines=[line("VWRP", "BUY", "201.00", "2")], constraints_report=report("600", "397.50")),
        Verdict.WARN,
        ("£347.50 is left unspent above the £50.00 cash buffer, more than the smallest trade of £100.00",),
    ),
]


@pytest.mark.parametrize("case", RECOMMENDATION_CASES, ids=lambda c: c.name)
def test_builtin_rules_recommendation(case: Case) -> None:
    request = case.request()
    verdict = BuiltinRulesReviewer().review(request)
    assert verdict.verdict is case.verdict, verdict.reasons
    for fragment in case.fragments:
        assert any(fragment in reason for reason in verdict.reasons), (fragment, verdict.reasons)
    assert (verdict.provider, verdict.model) == ("builtin-rules", "rules-v2")
    assert verdict.request_hash == request_hash(request, "builtin-rules", "rules-v2")
    assert verdict.response_json["verdict"] == case.verdict.value
    assert verdict.response_json["reasons"] == list(verdict.reasons)
    assert BuiltinRulesReviewer().review(case.request()) == verdict  # deterministic


def test_builtin_rules_reports_every_failure_at_once() -> None:
    request = rec_request(
        recommendation(
            lines=[line("SEMI", "SELL", "80", "1"), line("TSLA", "BUY", "9000", "30", exchange="XNAS")],
            constraints_report=report("600"),
        ),
        frozen=True,
    )
    verdict = BuiltinRulesReviewer().review(request)
    assert verdict.verdict is Verdict.FAIL
    text = "\n".join(verdict.reasons)
    for fragment in (
        "frozen",
        "does not allow MONTHLY_ALLOC to sell",
        "below the minimum trade",
        "more than the £600.00 available",
        "below the £50.00 buffer",
        "max single trade",
        "never sell: SEMIS",
        "avoid: TSLA",
    ):
        assert fragment in text, fragment


# --------------------------------------------------------------------------------------------
# builtin-rules: manifestos
# --------------------------------------------------------------------------------------------
MANIFESTO_CASES = [
    ("a good manifesto", MANIFESTO, Verdict.PASS, ("all checks hold",)),
    ("sleeves in lower case count", "core, semis and energy, nothing else.", Verdict.PASS, ()),
    ("empty", "  \n\t", Verdict.FAIL, ("the manifesto is empty",)),
    (
        "a sleeve not mentioned",
        "CORE and SEMIS only. ENERGYX is not a sleeve.",
        Verdict.FAIL,
        ("does not mention the sleeve(s) ENERGY",),
    ),
    (
        "a rule that does not parse",
        MANIFESTO + "- avoid: chasing performance\n- never sell:\n",
        Verdict.FAIL,
        ("line 10 (avoid: chasing performance): expected sleeve codes", "line 11 (never sell: )"),
    ),
    (
        "a max single trade below the minimum trade",
        MANIFESTO + "- max single trade: 50\n",
        Verdict.WARN,
        ("max single trade (£50.00) is below the policy's minimum trade (£100.00)",),
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "expected", "fragments"), MANIFESTO_CASES, ids=[c[0] for c in MANIFESTO_CASES]
)
def test_builtin_rules_manifesto(name: str, text: str, expected: Verdict, fragments: tuple[str, ...]) -> None:
    verdict = get_reviewer("builtin-rules").review(ReviewRequest("manifesto", POLICY, manifesto=text))
    assert verdict.verdict is expected, verdict.reasons
    for fragment in fragments:
        assert any(fragment in reason for reason in verdict.reasons), (fragment, verdict.reasons)


def test_manifesto_rule_convention() -> None:
    rules = parse_manifesto_rules(
        "Prose that says avoid: anything is not a rule.\n"
        "- NEVER SELL: semis, vwrp:lse\n"
        "  + Avoid: tsla\n"
        "- max single trade: 7,500.00\n"
        "- max   single trade: 5000.\n"
        "- some other bullet: fine\n"
    )
    assert rules.never_sell == {"SEMIS", "VWRP:LSE"}
    assert rules.avoid == {"TSLA"}
    assert str(rules.max_single_trade) == "5000"  # the strictest limit wins
    assert rules.problems == ()
    assert rules.count == 4


# --------------------------------------------------------------------------------------------
# LLM reviewers against local servers speaking each protocol
# --------------------------------------------------------------------------------------------
OPENAI_KEY = "sk-CANARY-openai-key-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-CANARY-anthropic-key-0123456789"


def openai_completion(content: str, finish_reason: str = "stop") -> Reply:
    return Reply(
        200,
        json.dumps(
            {
                "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                "object": "chat.completion",
                "created": 1741570283,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163},
                "service_tier": "default",
                "system_fingerprint": "fp_06737a9306",
            }
        ),
    )


def anthropic_message(text: str, stop_reason: str = "end_turn") -> Reply:
    return Reply(
        200,
        json.dumps(
            {
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [{"type": "text", "text": text}],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {"input_tokens": 1204, "output_tokens": 52},
            }
        ),
    )


@dataclass(frozen=True)
class Protocol:
    name: str
    path: str
    key: str
    ok: Callable[[str], Reply]

    def reviewer(self, base_url: str, **options: Any) -> OpenAICompatibleReviewer | AnthropicReviewer:
        options.setdefault("policy", fast_policy())
        if self.name == "openai-compatible":
            return OpenAICompatibleReviewer(base_url + "/v1", "gpt-4o-mini", self.key, **options)
        return AnthropicReviewer(base_url, "claude-sonnet-4-5", self.key, **options)


OPENAI = Protocol("openai-compatible", "/v1/chat/completions", OPENAI_KEY, openai_completion)
ANTHROPIC = Protocol("anthropic", "/v1/messages", ANTHROPIC_KEY, anthropic_message)
PROTOCOLS = [OPENAI, ANTHROPIC]
WARN_JSON = json.dumps({"verdict": "WARN", "reasons": ["CORE is 1 point from its band", "cash is thin"]})


def assert_key_hidden(key: str, *texts: str) -> None:
    for text in texts:
        assert key not in text
        assert "CANARY" not in text


def test_openai_compatible_request_and_verdict(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    request = rec_request()
    with RecordingServer([openai_completion(WARN_JSON)]) as server:
        reviewer = OPENAI.reviewer(server.base_url)
        verdict = reviewer.review(request)
    (seen,) = server.seen
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.headers["Content-Type"] == "application/json"
    body = seen.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert canonical_dumps(request.to_json_dict()) in user["content"]

    assert verdict.verdict is Verdict.WARN
    assert verdict.reasons == ("CORE is 1 point from its band", "cash is thin")
    assert (verdict.provider, verdict.model) == ("openai-compatible", "gpt-4o-mini")
    assert verdict.response_json["object"] == "chat.completion"
    assert verdict.response_json["usage"]["total_tokens"] == 1163
    assert verdict.request_hash == request_hash(request, "openai-compatible", "gpt-4o-mini")
    assert_key_hidden(OPENAI_KEY, caplog.text, repr(reviewer))


def test_anthropic_request_and_verdict(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    request = ReviewRequest("manifesto", POLICY, manifesto=MANIFESTO)
    fail = json.dumps({"verdict": "fail", "reasons": ["ENERGY has no stated purpose"]})
    with RecordingServer([anthropic_message(fail)]) as server:
        reviewer = ANTHROPIC.reviewer(server.base_url, max_tokens=512)
        verdict = reviewer.review(request)
    (seen,) = server.seen
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == ANTHROPIC_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers
    body = seen.json()
    assert body["model"] == "claude-sonnet-4-5"
    assert body["max_tokens"] == 512
    assert body["system"] == SYSTEM_PROMPT
    assert body["temperature"] == 0
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert canonical_dumps(request.to_json_dict()) in message["content"]

    assert verdict.verdict is Verdict.FAIL
    assert verdict.reasons == ("ENERGY has no stated purpose",)
    assert verdict.response_json["type"] == "message"
    assert verdict.response_json["content"][0]["text"] == fail
    assert verdict.request_hash == request_hash(request, "anthropic", "claude-sonnet-4-5")
    assert_key_hidden(ANTHROPIC_KEY, caplog.text, repr(reviewer))


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_fenced_json_is_tolerated(proto: Protocol) -> None:
    fenced = 'Here is my review:\n```json\n{"verdict": "PASS", "reasons": []}\n```\n'
    with RecordingServer([proto.ok(fenced)]) as server:
        verdict = proto.reviewer(server.base_url).review(rec_request())
    assert verdict.verdict is Verdict.PASS and verdict.reasons == ()


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("Looks fine to me.", "not a JSON verdict"),
        ('{"verdict": "OK", "reasons": []}', "verdict 'OK' is not PASS, WARN or FAIL"),
        ('{"reasons": ["x"]}', "verdict None"),
        ('{"verdict": "FAIL", "reasons": []}', "FAIL verdict came without reasons"),
        ('{"verdict": "WARN", "reasons": [1, 2]}', "reasons are not a list of strings"),
        ('["PASS"]', "not a JSON object"),
    ],
)
def test_an_unreadable_verdict_is_an_error_never_a_pass(proto: Protocol, content: str, match: str) -> None:
    with RecordingServer([proto.ok(content)]) as server, pytest.raises(ProviderError, match=match):
        proto.reviewer(server.base_url).review(rec_request())


def test_truncated_answers_are_errors() -> None:
    truncated = openai_completion('{"verdict": "PA', "length")
    with RecordingServer([truncated]) as server, pytest.raises(ProviderError, match="cut off at the token"):
        OPENAI.reviewer(server.base_url).review(rec_request())
    truncated = anthropic_message('{"verdict": "PA', "max_tokens")
    with RecordingServer([truncated]) as server, pytest.raises(ProviderError, match="cut off at max_tokens"):
        ANTHROPIC.reviewer(server.base_url).review(rec_request())


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_rate_limit_with_retry_after_is_retried(proto: Protocol) -> None:
    limited = Reply(429, '{"error": {"type": "rate_limit_error"}}', headers={"Retry-After": "0"})
    with RecordingServer([limited, proto.ok(WARN_JSON)]) as server:
        verdict = proto.reviewer(server.base_url).review(rec_request())
    assert verdict.verdict is Verdict.WARN
    assert len(server.seen) == 2
    assert server.seen[0].body == server.seen[1].body


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_server_errors_give_a_provider_error_after_the_cap(proto: Protocol, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    unavailable = Reply(503, '{"error": {"message": "overloaded"}}')
    with RecordingServer([unavailable]) as server, pytest.raises(ProviderError) as caught:
        proto.reviewer(server.base_url).review(rec_request())
    assert len(server.seen) == 3  # fast_policy's max_attempts
    assert f"{proto.name} reviewer" in str(caught.value)
    assert "HTTP 503" in str(caught.value) and "after 3 attempts" in str(caught.value)
    # A 500 may have been processed: the POST is not sent again, the error says so at once.
    boom = Reply(500, '{"error": {"message": "boom"}}')
    with RecordingServer([boom]) as server, pytest.raises(ProviderError, match="HTTP 500"):
        proto.reviewer(server.base_url).review(rec_request())
    assert len(server.seen) == 1
    assert_key_hidden(proto.key, str(caught.value), caplog.text)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_the_key_never_shows_even_when_the_server_echoes_it(proto: Protocol, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    echo = Reply(401, json.dumps({"error": {"message": f"Incorrect API key provided: {proto.key}"}}))
    with RecordingServer([echo]) as server, pytest.raises(ProviderError) as caught:
        proto.reviewer(server.base_url).review(rec_request())
    assert "HTTP 401" in str(caught.value)
    assert "Incorrect API key provided: ***" in str(caught.value)
    assert_key_hidden(proto.key, str(caught.value), repr(caught.value.context), caplog.text)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda p: p.name)
def test_a_server_that_never_answers_times_out(proto: Protocol) -> None:
    with silent_server() as silent:
        reviewer = proto.reviewer(silent, policy=None, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(HttpTimeout) as caught:
            reviewer.review(rec_request())
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.75
    assert "timed out" in str(caught.value)
    assert_key_hidden(proto.key, str(caught.value))


def test_settings_from_the_environment(monkeypatch) -> None:
    for name in (
        "TRADEASSIST_LLM_BASE_URL",
        "TRADEASSIST_LLM_MODEL",
        "TRADEASSIST_LLM_API_KEY",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="set TRADEASSIST_LLM_API_KEY or OPENAI_API_KEY"):
        OpenAICompatibleReviewer().review(rec_request())
    with RecordingServer([openai_completion(WARN_JSON)]) as server:
        monkeypatch.setenv("TRADEASSIST_LLM_BASE_URL", server.base_url + "/v1/")
        monkeypatch.setenv("TRADEASSIST_LLM_MODEL", "llama3.1:8b")
        local = get_reviewer("openai-compatible", policy=fast_policy())
        assert local.model == "llama3.1:8b"
        local.review(rec_request())  # a local server needs no key
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        get_reviewer("openai-compatible", policy=fast_policy()).review(rec_request())
    assert "Authorization" not in server.seen[0].headers
    assert server.seen[1].headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert server.seen[1].json()["model"] == "llama3.1:8b"

    for name in ("TRADEASSIST_ANTHROPIC_BASE_URL", "TRADEASSIST_ANTHROPIC_MODEL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert AnthropicReviewer().model == "claude-sonnet-4-5"
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        AnthropicReviewer().review(rec_request())
    with RecordingServer([anthropic_message(WARN_JSON)]) as server:
        monkeypatch.setenv("TRADEASSIST_ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("TRADEASSIST_ANTHROPIC_MODEL", "claude-haiku-4-5")
        monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        verdict = get_reviewer("anthropic", policy=fast_policy()).review(rec_request())
    assert verdict.model == "claude-haiku-4-5"
    assert server.seen[0].headers["x-api-key"] == ANTHROPIC_KEY


def test_parse_verdict_text_directly() -> None:
    verdict, reasons = parse_verdict_text(
        ' {"verdict": " warn ", "reasons": "one reason"} ', provider="p", model="m"
    )
    assert verdict is Verdict.WARN and reasons == ("one reason",)
    with pytest.raises(ProviderError, match=r"p \(m\): the answer is not a JSON verdict"):
        parse_verdict_text("", provider="p", model="m")


def test_requests_are_not_mutated_by_reviewing() -> None:
    rec = recommendation()
    before = copy.deepcopy(rec)
    request = rec_request(rec)
    BuiltinRulesReviewer().review(request)
    assert rec == before
    assert request.to_json_dict()["recommendation"] == before
