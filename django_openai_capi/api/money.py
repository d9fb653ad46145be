"""Amounts in the currency's minor unit, as the API wants them.

The API takes ``amount`` as an integer in the ISO 4217 minor unit of ``currency``
(``2599`` is USD 25.99; ``8900`` is JPY 8,900). Getting the exponent wrong silently
multiplies or divides reported revenue by 100 or 1,000, so the exponent comes from the
ISO 4217 table itself and a conversion that would lose precision is refused.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from iso4217 import Currency

from django_openai_capi.api import spec
from django_openai_capi.api.values import given
from django_openai_capi.exceptions import EventValidationError, ValidationIssue


def currency_exponent(code: str) -> int | None:
    """The number of minor-unit digits of an ISO 4217 currency code, any case.

    ``None`` when the code is not an ISO 4217 code, or names something with no minor
    unit (gold, special drawing rights, ...) that cannot carry a price.
    """
    # ASCII first: Unicode case mapping would turn "uſd" into "USD". str's own methods:
    # a subclass's could say anything (see values.encodable).
    if not (len(code) == 3 and str.isascii(code) and str.isalpha(code)):
        return None
    return _exponent(str.upper(code))


# Unbounded, and small all the same: at most 26**3 codes can reach it. Every amount of
# every event asks, and an enum lookup by value is slow.
@functools.cache
def _exponent(code: str) -> int | None:
    try:
        currency = Currency(code)
    except ValueError:
        return None
    return currency.exponent


def is_currency(code: object) -> bool:
    # Callers are typed, but values often come from JSON or a model field at run time.
    return isinstance(code, str) and currency_exponent(code) is not None


def to_minor_units(
    amount: Decimal | int | str, currency: str, *, field: str = "amount"
) -> int:
    """Convert an amount in major units (``Decimal("25.99")``) to the API's integer.

    >>> to_minor_units(Decimal("25.99"), "USD")
    2599
    >>> to_minor_units(Decimal("8900"), "JPY")
    8900

    Refuses floats (``0.1 + 0.2`` is not ``0.3``), values with more decimal places than
    the currency has (``Decimal("1.005")`` in USD), values beyond a 64-bit integer, and
    unknown currencies, with an :class:`EventValidationError` naming ``field`` (and its
    sibling ``currency`` field). The arithmetic is exact whatever the ``decimal`` context.
    """
    currency_field = field.rpartition(".")[0] + "." if "." in field else ""
    exponent = currency_exponent(currency) if is_currency(currency) else None
    if exponent is None:
        raise _error(
            currency_field + "currency",
            "invalid_currency",
            f"must be an ISO 4217 currency code with a minor unit, got {_short(currency)}",
        )
    value = _as_decimal(amount, field)
    sign, digits, value_exponent = value.as_tuple()
    assert isinstance(value_exponent, int)  # finite, checked by _as_decimal
    # Integer arithmetic on the digits: Decimal.scaleb would round to the context's
    # precision (28 digits by default, less if the project lowered it) without a word.
    shift = value_exponent + exponent
    cut = len(digits) + min(shift, 0)
    whole, fraction = digits[: max(cut, 0)], digits[max(cut, 0) :]
    if any(fraction):
        raise _error(
            field,
            "amount_precision",
            f"{_short(value)} {currency.upper()} has more than {exponent} decimal "
            "places; round it before converting",
        )
    # Sized before any int() of the digits: 19 digits is the most a 64-bit int has, and
    # int() of a 5,000-digit string raises ValueError.
    whole_digits = len(whole) + max(shift, 0) if any(whole) else 0
    number = (
        0
        if whole_digits > 19
        else int("".join(map(str, whole)) or "0") * 10 ** max(shift, 0)
    )
    if whole_digits > 19 or number > spec.MAX_INTEGER:
        raise _error(field, "amount_too_large", "must fit in a 64-bit integer")
    return -number if sign else number


def _as_decimal(amount: object, field: str) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        floats = (
            " (floats cannot represent money exactly)"
            if isinstance(amount, float)
            else ""
        )
        raise _error(
            field,
            "amount_type",
            f"must be a Decimal, an int or a numeric string, got {type(amount).__name__}{floats}",
        )
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        value = Decimal("NaN")
    if not value.is_finite():
        raise _error(
            field, "amount_type", f"must be a finite number, got {_short(amount)}"
        )
    return value


def _short(value: object) -> str:
    # Amounts are numbers and currencies codes: anything else is described, not echoed.
    if isinstance(value, Decimal):
        text = str(value)
        return text if len(text) <= 40 else f"a Decimal of {len(text)} characters"
    return given(value)


def _error(path: str, code: str, message: str) -> EventValidationError:
    return EventValidationError([ValidationIssue(path, code, message)])
