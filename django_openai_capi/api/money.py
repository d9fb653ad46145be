"""Amounts in the currency's minor unit, as the API wants them.

The API takes ``amount`` as an integer in the ISO 4217 minor unit of ``currency``
(``2599`` is USD 25.99; ``8900`` is JPY 8,900). Getting the exponent wrong silently
multiplies or divides reported revenue by 100 or 1,000, so the exponent comes from the
ISO 4217 table itself and a conversion that would lose precision is refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from iso4217 import Currency

from django_openai_capi.exceptions import EventValidationError, ValidationIssue


def currency_exponent(code: str) -> int | None:
    """The number of minor-unit digits of an ISO 4217 currency code, any case.

    ``None`` when the code is not an ISO 4217 code, or names something with no minor
    unit (gold, special drawing rights, ...) that cannot carry a price.
    """
    try:
        currency = Currency(code.upper())
    except ValueError:
        return None
    return currency.exponent


def is_currency(code: object) -> bool:
    return _exponent_of(code) is not None


def _exponent_of(code: object) -> int | None:
    # Callers are typed, but values often come from JSON or a model field at run time.
    if not isinstance(code, str) or len(code) != 3:
        return None
    return currency_exponent(code)


def to_minor_units(
    amount: Decimal | int | str, currency: str, *, field: str = "amount"
) -> int:
    """Convert an amount in major units (``Decimal("25.99")``) to the API's integer.

    >>> to_minor_units(Decimal("25.99"), "USD")
    2599
    >>> to_minor_units(Decimal("8900"), "JPY")
    8900

    Refuses floats (``0.1 + 0.2`` is not ``0.3``), values with more decimal places than
    the currency has (``Decimal("1.005")`` in USD), and unknown currencies, with an
    :class:`EventValidationError` naming ``field``.
    """
    exponent = _exponent_of(currency)
    if exponent is None:
        raise EventValidationError(
            [
                ValidationIssue(
                    "currency",
                    "invalid_currency",
                    f"must be an ISO 4217 currency code with a minor unit, got {currency!r}",
                )
            ]
        )
    value = _as_decimal(amount, field)
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise EventValidationError(
            [
                ValidationIssue(
                    field,
                    "amount_precision",
                    f"{value} {currency.upper()} has more than {exponent} decimal places; "
                    "round it before converting",
                )
            ]
        )
    return int(minor)


def _as_decimal(amount: object, field: str) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int | str):
        raise EventValidationError(
            [
                ValidationIssue(
                    field,
                    "amount_type",
                    f"must be a Decimal, an int or a numeric string, got {type(amount).__name__}"
                    + (
                        " (floats cannot represent money exactly)"
                        if isinstance(amount, float)
                        else ""
                    ),
                )
            ]
        )
    try:
        value = Decimal(amount)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise EventValidationError(
            [
                ValidationIssue(
                    field, "amount_type", f"must be a finite number, got {amount!r}"
                )
            ]
        )
    return value
