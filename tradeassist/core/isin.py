"""ISIN validation (ISO 6166).

An ISIN is the instrument's canonical identity in the registry, so a mistyped one must be
refused where it enters, with a reason a person can act on. Structure: a 2-letter country
(or agency) prefix, a 9-character national code of letters and digits, and one check digit
computed by the Luhn algorithm over the digits obtained by spelling each letter as a number
(A=10 … Z=35).
"""

from __future__ import annotations

from .errors import ValidationError

ISIN_LENGTH = 12


def _digits(body: str) -> str:
    # int(ch, 36) gives 0-9 for digits and 10-35 for A-Z: exactly ISO 6166's letter values.
    return "".join(str(int(ch, 36)) for ch in body)


def isin_check_digit(body: str) -> str:
    """The check digit for the first 11 characters of an ISIN (upper-case letters and digits)."""
    if len(body) != ISIN_LENGTH - 1 or not body.isascii() or not body.isalnum():
        raise ValidationError(f"ISIN body {body!r}: need 11 letters or digits")
    total = 0
    # Luhn: starting from the rightmost digit of the body (the check digit will sit to its
    # right), double every other digit and add the digits of each product.
    for position, ch in enumerate(reversed(_digits(body.upper()))):
        value = int(ch)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def validate_isin(text: str) -> str:
    """Return ``text`` as a valid upper-case ISIN, or raise ``ValidationError`` saying why."""
    if not isinstance(text, str):
        raise ValidationError(f"ISIN {text!r}: not text")
    isin = text.strip().upper()
    if len(isin) != ISIN_LENGTH:
        raise ValidationError(f"ISIN {text!r}: must be {ISIN_LENGTH} characters, got {len(isin)}")
    if not isin.isascii():
        raise ValidationError(f"ISIN {text!r}: only the letters A-Z and digits 0-9 are allowed")
    if not isin[:2].isalpha():
        raise ValidationError(f"ISIN {text!r}: must start with a 2-letter country code, got {isin[:2]!r}")
    if not isin[2:11].isalnum():
        raise ValidationError(f"ISIN {text!r}: characters 3-11 must be letters or digits, got {isin[2:11]!r}")
    if not isin[11].isdigit():
        raise ValidationError(f"ISIN {text!r}: the last character must be a check digit, got {isin[11]!r}")
    expected = isin_check_digit(isin[:11])
    if isin[11] != expected:
        raise ValidationError(f"ISIN {isin}: check digit is {isin[11]}, expected {expected}")
    return isin


def is_valid_isin(text: str) -> bool:
    try:
        validate_isin(text)
    except ValidationError:
        return False
    return True
