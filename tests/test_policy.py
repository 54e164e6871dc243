"""The policy schema: the design's example, defaults, refusals with key paths, canonical hash."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeassist.core.errors import ValidationError
from tradeassist.core.jsonutil import sha256_of
from tradeassist.policy import Policy, canonical_policy_json, parse_policy, policy_sha256, policy_to_dict

EXAMPLE = """{"sleeve_targets": {"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.15"},
 "drift_bands": {"absolute": "0.05", "relative": "0.25"},
 "min_trade_base": "100", "fee_per_trade_base": "1.50", "cash_buffer_base": "50",
 "whole_units": true,
 "allow_sells": {"MONTHLY_ALLOC": false, "QUARTERLY_REBAL": true}}"""


def example(**changes: object) -> dict:
    data = json.loads(EXAMPLE)
    data.update(changes)
    return data


def refusal(data: object) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_policy(data)  # type: ignore[arg-type]
    return str(caught.value)


def test_the_design_example_is_accepted_exactly_as_shown() -> None:
    policy = parse_policy(EXAMPLE)
    assert policy.sleeve_targets == {
        "CORE": Decimal("0.70"),
        "SEMIS": Decimal("0.15"),
        "ENERGY": Decimal("0.15"),
    }
    assert policy.drift_bands.absolute == Decimal("0.05")
    assert policy.drift_bands.relative == Decimal("0.25")
    assert (policy.min_trade_base, policy.fee_per_trade_base, policy.cash_buffer_base) == (
        Decimal("100"),
        Decimal("1.50"),
        Decimal("50"),
    )
    assert policy.whole_units is True
    assert policy.sells_allowed("MONTHLY_ALLOC") is False
    assert policy.sells_allowed("QUARTERLY_REBAL") is True


def test_added_keys_have_documented_defaults() -> None:
    policy = parse_policy(EXAMPLE)
    assert policy.schema_version == 1
    assert policy.max_price_age_business_days == 5
    assert dict(policy.constituent_split) == {}
    assert policy.sell_and_buy_in_same_sleeve is True
    assert policy.sells_allowed("WEEKLY_REVIEW") is True  # follows QUARTERLY_REBAL
    for name, field in Policy.model_fields.items():
        assert field.description, f"{name} needs a description (the README quotes them)"


def test_json_numbers_are_read_as_decimals_never_floats() -> None:
    text = EXAMPLE.replace('"0.05"', "0.05").replace('"100"', "100").replace('"1.50"', "1.50")
    policy = parse_policy(text)
    assert policy.drift_bands.absolute == Decimal("0.05")
    assert isinstance(policy.min_trade_base, Decimal)
    assert policy.fee_per_trade_base == Decimal("1.50")


def test_a_python_float_is_refused_with_its_path() -> None:
    message = refusal(example(drift_bands={"absolute": 0.05, "relative": "0.25"}))
    assert message.startswith("policy: drift_bands: absolute: floats are not accepted")


def test_targets_must_sum_to_exactly_one() -> None:
    message = refusal(example(sleeve_targets={"CORE": "0.70", "SEMIS": "0.15", "ENERGY": "0.10"}))
    assert message == "policy: sleeve_targets: must sum to exactly 1 (got 0.95)"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"sleeve_targets": {"CORE": "1.2", "SEMIS": "-0.2"}},
            "policy: sleeve_targets: CORE: a target must lie",
        ),
        ({"sleeve_targets": {"core": "1"}}, "policy: sleeve_targets: 'core': a sleeve code"),
        ({"sleeve_targets": {}}, "policy: sleeve_targets: at least one sleeve"),
        (
            {"drift_bands": {"absolute": "-0.01", "relative": "0.25"}},
            "policy: drift_bands: absolute: must not be",
        ),
        ({"drift_bands": {"absolute": "0.05"}}, "policy: drift_bands: relative: required key is missing"),
        ({"min_trade_base": "-1"}, "policy: min_trade_base: must not be negative (got -1)"),
        ({"fee_per_trade_base": "abc"}, "policy: fee_per_trade_base: 'abc' is not a number"),
        ({"cash_buffer_base": "NaN"}, "policy: cash_buffer_base: 'NaN' is not a finite number"),
        ({"whole_units": False}, "policy: whole_units: false is not supported"),
        (
            {"allow_sells": {"ALERT_ONLY": True}},
            "policy: allow_sells: 'ALERT_ONLY': only MONTHLY_ALLOC",
        ),
        (
            {"allow_sells": {"QUARTERLY_REBAL": "yes"}},
            "policy: allow_sells: QUARTERLY_REBAL: Input should be",
        ),
        ({"schema_version": 2}, "policy: schema_version: Input should be 1"),
        ({"max_price_age_business_days": -1}, "policy: max_price_age_business_days: Input should be greater"),
        ({"surprise": 1}, "policy: surprise: unknown key"),
        (
            {"drift_bands": {"absolute": "0", "relative": "0", "extra": "1"}},
            "policy: drift_bands: extra: unknown key",
        ),
    ],
)
def test_invalid_policies_name_the_key_path(changes: dict, expected: str) -> None:
    assert refusal(example(**changes)).startswith(expected)


def test_every_problem_is_reported_at_once() -> None:
    message = refusal({"sleeve_targets": {"CORE": "1"}, "surprise": True})
    for key in ("drift_bands", "min_trade_base", "fee_per_trade_base", "cash_buffer_base", "surprise"):
        assert f"policy: {key}:" in message


def test_missing_required_keys_are_named() -> None:
    data = example()
    del data["min_trade_base"]
    assert refusal(data) == "policy: min_trade_base: required key is missing"


def test_not_json_and_not_an_object_are_refused() -> None:
    assert refusal("{not json").startswith("policy: not valid JSON")
    assert refusal("[1, 2]") == "policy: expected a JSON object, got list"


def test_constituent_split_is_validated() -> None:
    good = parse_policy(example(constituent_split={"CORE": {"VWRP:LSE": "0.6", "SWDA:LSE": "0.4"}}))
    assert good.constituent_split["CORE"]["VWRP:LSE"] == Decimal("0.6")
    assert refusal(example(constituent_split={"CORE": {"VWRP:LSE": "0.6"}})).startswith(
        "policy: constituent_split: CORE: weights must sum to exactly 1 (got 0.6)"
    )
    assert "a listing is written TICKER:EXCHANGE" in refusal(
        example(constituent_split={"CORE": {"VWRP": "1"}})
    )
    assert refusal(example(constituent_split={"BONDS": {"IGLT:LSE": "1"}})).endswith(
        "constituent_split: BONDS: not a sleeve of sleeve_targets"
    )


def test_a_policy_is_frozen_and_its_mappings_read_only() -> None:
    policy = parse_policy(EXAMPLE)
    with pytest.raises(pydantic.ValidationError):
        policy.min_trade_base = Decimal("0")  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.sleeve_targets["CORE"] = Decimal("1")  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.allow_sells["MONTHLY_ALLOC"] = True  # type: ignore[index]


def test_parse_accepts_text_bytes_dicts_and_policies_alike() -> None:
    policy = parse_policy(EXAMPLE)
    assert parse_policy(EXAMPLE.encode()) == policy
    assert parse_policy(json.loads(EXAMPLE)) == policy
    assert parse_policy(policy) is policy


def test_canonical_form_fills_defaults_sorts_keys_and_normalises_numbers() -> None:
    text = canonical_policy_json(EXAMPLE)
    assert text == (
        '{"allow_sells":{"MONTHLY_ALLOC":false,"QUARTERLY_REBAL":true,"WEEKLY_REVIEW":true},"cash_buffer_base":"50",'
        '"constituent_split":{},"drift_bands":{"absolute":"0.05","relative":"0.25"},'
        '"fee_per_trade_base":"1.5","line_penalty_base":null,"max_lines_per_sleeve":null,'
        '"max_price_age_business_days":5,"max_trade_base":null,"max_turnover":"0.25",'
        '"min_trade_base":"100","never_buy":[],"never_sell":[],'
        '"schema_version":1,"sell_and_buy_in_same_sleeve":true,'
        '"sleeve_targets":{"CORE":"0.7","ENERGY":"0.15","SEMIS":"0.15"},"unpriced":"block",'
        '"untargeted":"hold","whole_units":true}'
    )
    assert parse_policy(text) == parse_policy(EXAMPLE)
    assert policy_sha256(EXAMPLE) == sha256_of(policy_to_dict(EXAMPLE))


def test_same_content_same_hash_whatever_the_spelling() -> None:
    respelled = {
        "whole_units": True,
        "allow_sells": {"QUARTERLY_REBAL": True},
        "cash_buffer_base": 50,
        "fee_per_trade_base": "1.5000",
        "min_trade_base": "1E+2",
        "drift_bands": {"relative": Decimal("0.250"), "absolute": "0.05"},
        "sleeve_targets": {"ENERGY": "0.15", "SEMIS": "0.150", "CORE": "0.7"},
        "schema_version": 1,
    }
    assert policy_sha256(respelled) == policy_sha256(EXAMPLE)
    assert policy_sha256(json.dumps(json.loads(EXAMPLE), indent=4)) == policy_sha256(EXAMPLE)
    assert policy_sha256(example(cash_buffer_base="51")) != policy_sha256(EXAMPLE)
    assert policy_sha256(example(allow_sells={"QUARTERLY_REBAL": False})) != policy_sha256(EXAMPLE)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.booleans())
def test_key_order_and_whitespace_never_change_the_hash(rng: random.Random, indent: bool) -> None:
    def shuffled(value: object) -> object:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {key: shuffled(item) for key, item in items}
        return value

    text = json.dumps(shuffled(json.loads(EXAMPLE)), indent=2 if indent else None)
    assert policy_sha256(text) == policy_sha256(EXAMPLE)


def test_max_lines_per_sleeve_is_a_positive_whole_number_or_absent() -> None:
    assert parse_policy(example(max_lines_per_sleeve=2)).max_lines_per_sleeve == 2
    assert parse_policy(EXAMPLE).max_lines_per_sleeve is None
    assert refusal(example(max_lines_per_sleeve=0)).startswith(
        "policy: max_lines_per_sleeve: Input should be"
    )
    assert refusal(example(max_lines_per_sleeve="1")).startswith(
        "policy: max_lines_per_sleeve: Input should be"
    )


def test_a_policy_keeps_its_spelling_and_can_be_written_back_as_is() -> None:
    policy = parse_policy(EXAMPLE)
    assert str(policy.sleeve_targets["CORE"]) == "0.70"  # shown as the user wrote it
    written = policy_to_dict(policy, as_written=True)
    assert written["sleeve_targets"]["CORE"] == "0.70" and written["fee_per_trade_base"] == "1.50"
    assert str(parse_policy(written).fee_per_trade_base) == "1.50"
    assert policy_sha256(written) == policy_sha256(EXAMPLE)
    assert policy_to_dict(policy)["sleeve_targets"]["CORE"] == "0.7"  # the canonical content


def test_a_stored_policy_that_predates_a_key_keeps_the_meaning_it_had() -> None:
    from tradeassist.policy import parse_stored_policy

    old = parse_stored_policy(json.loads(EXAMPLE))  # stored before the hard rules existed
    assert (old.line_penalty, old.max_turnover, old.untargeted, old.unpriced) == (
        Decimal(0),
        Decimal(1),
        "sell",
        "exclude",
    )
    new = parse_stored_policy(json.loads(canonical_policy_json(EXAMPLE)))  # stored since: states every key
    assert new == parse_policy(EXAMPLE) and new.line_penalty == Decimal(100) and new.untargeted == "hold"
