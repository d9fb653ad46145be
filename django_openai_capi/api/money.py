"""Amounts in the currency's minor unit, as the API wants them.

The API takes ``amount`` as an integer in the ISO 4217 minor unit of ``currency``
(``2599`` is USD 25.99; ``8900`` is JPY 8,900). Getting the exponent wrong silently
multiplies or divides reported revenue by 100 or 1,000, so the exponent comes from the
ISO 4217 table itself and a conversion that would lose precision is refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency

from django_openai_capi.api import spec
from django_openai_capi.exceptions import EventValidationError, ValidationIssue


def currency_exponent(code: str) -> int | None:
    """The number of minor-unit digits of an ISO 4217 currency code, any case.

    ``None`` when the code is not an ISO 4217 code, or names something with no minor
    unit (gold, special drawing rights, ...) that cannot carry a price.
    """
    # ASCII first: Unicode case mapping would turn "uſd" into "USD".
    if not (len(code) == 3 and code.isascii() and code.isalpha()):
        return None
    try:
        currency = Currency(code.upper())
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
    sign, digits, value_exponent = _as_decimal(amount, field).as_tuple()
    assert isinstance(value_exponent, int)  # finite, checked by _as_decimal
    # Integer arithmetic on the digits: Decimal.scaleb would round to the context's
    # precision (28 digits by default, less if the project lowered it) without a word.
    shift = value_exponent + exponent
    number = int("".join(map(str, digits)))
    if shift < 0:
        # A number with fewer digits than the shift is all fraction (or zero): no need
        # to build 10**shift, which for Decimal("1E-99999999") would take seconds.
        number, remainder = (
            divmod(number, 10**-shift) if -shift <= len(digits) else (0, number)
        )
        if remainder:
            raise _error(
                field,
                "amount_precision",
                f"{_short(amount)} {currency.upper()} has more than {exponent} decimal "
                "places; round it before converting",
            )
    elif len(digits) + shift > 19:
        raise _error(field, "amount_too_large", "must fit in a 64-bit integer")
    else:
        number *= 10**shift
    if number > spec.MAX_INTEGER:
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
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value.bit_length() > 64
    ):
        return f"an integer of {value.bit_length()} bits"
    text = repr(value) if not isinstance(value, Decimal) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _error(path: str, code: str, message: str) -> EventValidationError:
    return EventValidationError([ValidationIssue(path, code, message)])
