"""Reading and writing policies: JSON text or a dict to a validated ``Policy`` (errors name
the key path), a stored snapshot's policy with its legacy meaning, the plain dict, the
canonical JSON and its SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pydantic
from pydantic import BaseModel

from ..core.errors import ValidationError
from ..core.jsonutil import canonical_dumps
from ..core.limits import JsonInputError, load_json
from ..core.money import decimal_str
from .model import Policy


def _path(loc: tuple[int | str, ...]) -> str:
    return ": ".join(str(part) for part in loc)


def _reason(error: Mapping[str, Any]) -> str:
    kind = error.get("type")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error" and error.get("loc") == ("whole_units",):
        return "false is not supported: the engine trades whole units only"
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _policy_error(exc: pydantic.ValidationError) -> ValidationError:
    problems = [
        f"policy: {_path(err['loc'])}: {_reason(err)}" if err["loc"] else f"policy: {_reason(err)}"
        for err in exc.errors()
    ]
    return ValidationError("; ".join(problems), problems=problems)


def parse_policy(source: Policy | Mapping[str, Any] | str | bytes) -> Policy:
    """A validated ``Policy`` from JSON text, a plain dict or a Policy.

    Raises ``ValidationError`` whose message names the key path of each problem, e.g.
    ``policy: sleeve_targets: must sum to exactly 1 (got 0.95)``.
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, bytes | str):
        try:
            source = load_json(source.decode("utf-8") if isinstance(source, bytes) else source)
        except JsonInputError as exc:  # malformed, nested too deeply, a number too long, NaN
            raise ValidationError(f"policy: not valid JSON: {exc.reason} (line {exc.line})") from None
        except UnicodeDecodeError as exc:
            raise ValidationError(f"policy: not valid JSON: {exc}") from None
    if not isinstance(source, Mapping):
        raise ValidationError(f"policy: expected a JSON object, got {type(source).__name__}")
    try:
        return Policy.model_validate(dict(source))
    except pydantic.ValidationError as exc:
        raise _policy_error(exc) from None


# What a policy stored before these keys existed meant: every line free, no turnover limit,
# holdings outside the strategy targeted at 0, holdings without a price left out of the base.
# A stored input snapshot that lacks a key replays with this meaning, so a run recorded by an
# earlier version recomputes to the recommendation it made.
LEGACY_MEANING = {
    "line_penalty_base": "0",
    "max_turnover": "1",
    "untargeted": "sell",
    "unpriced": "exclude",
}


def parse_stored_policy(stored: Mapping[str, Any]) -> Policy:
    """A policy from an input snapshot, with ``LEGACY_MEANING`` for the keys it predates."""
    if not isinstance(stored, Mapping):
        raise ValidationError(f"policy: expected a JSON object, got {type(stored).__name__}")
    return parse_policy({**LEGACY_MEANING, **stored})


def policy_to_dict(
    policy: Policy | Mapping[str, Any] | str | bytes, *, as_written: bool = False
) -> dict[str, Any]:
    """The canonical content as a plain dict: every default filled in, decimals as strings.

    ``as_written`` keeps each number as the policy spells it ("0.70" stays "0.70"), so a
    policy rebuilt from the dict produces output spelled exactly like the original's.
    """
    parsed = parse_policy(policy)
    plain = _as_written(parsed) if as_written else parsed.model_dump(mode="json")
    return {k: v for k, v in plain.items() if k not in OMITTED_AT_DEFAULT or v != OMITTED_AT_DEFAULT[k]}


# Keys added after policies were first stored: left out of the canonical form while at their
# default, so every policy stored before them keeps its SHA-256.
OMITTED_AT_DEFAULT: dict[str, Any] = {"cgt": "ignore", "fee_per_trade_by_portfolio": {}}


def _as_written(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _as_written(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {key: _as_written(item) for key, item in value.items()}
    if isinstance(value, Decimal):
        return decimal_str(value)
    return value


def canonical_policy_json(policy: Policy | Mapping[str, Any] | str | bytes) -> str:
    """Sorted keys, no whitespace, normalised decimals: the text whose SHA-256 names the policy."""
    return canonical_dumps(policy_to_dict(policy))


def policy_sha256(policy: Policy | Mapping[str, Any] | str | bytes) -> str:
    return hashlib.sha256(canonical_policy_json(policy).encode("utf-8")).hexdigest()
