"""Amounts in the currency's minor unit, as the API wants them.

The API takes ``amount`` as an integer in the ISO 4217 minor unit of ``currency``
(``2599`` is USD 25.99; ``8900`` is JPY 8,900). Getting the exponent wrong silently
multiplies or divides reported revenue by 100 or 1,000, so the exponent comes from the
ISO 4217 table itself and a conversion that would lose precision is refused.

``build_event`` converts on its own (:func:`settle_amounts`): a host passes amounts as
Django holds them, a ``Decimal`` in major units or a ``Money``, and never a float.
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation
from typing import Final, TypeGuard

from iso4217 import Currency

from django_openai_capi.api import spec
from django_openai_capi.api.issues import IssueCollector, join
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


def is_currency(code: object) -> TypeGuard[str]:
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
            f"{_short(value)} {str.upper(currency)} has more than {exponent} decimal "
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


#: What to pass instead of a float, said wherever one is refused.
FLOAT_ADVICE: Final = (
    'pass a Decimal in major units (Decimal("25.99")), a Money, or an int in minor '
    "units (2599)"
)


def settle_amounts(data: object, issues: IssueCollector) -> None:
    """Turn the amounts of a built event's ``data`` into the API's minor-unit integers.

    In ``data`` and in each content item (which inherits ``data``'s currency when it has
    none of its own): a ``Decimal`` is major units of the currency; a Money (py-moneyed,
    django-money) is major units of its own currency, which fills a missing
    ``currency`` and must agree with a given one; an ``int`` is minor units already and
    is left alone. A float is refused. Each problem is added to *issues* once, and the
    amount it is about is taken out, so that the validator does not report it again.
    Currency codes are uppercased on the way. *data* is ``build_event``'s own copy.
    """
    if not isinstance(data, dict):
        return
    _upper_currency(data)
    amount = data.get("amount")
    if not (amount is None or type(amount) is int):
        _settle(data, "data", None, issues)
    contents = data.get("contents")
    # build_event sets the type, to the one the event type fixes or to None.
    if not (isinstance(contents, list) and data.get("type") in _WITH_CONTENTS):
        return  # the validator refuses contents where a data type has none
    inherited = data.get("currency")
    for index, item in enumerate(contents):
        if type(item) is dict:  # strip_empty made every mapping item a dict
            if "currency" in item:
                _upper_currency(item)
            amount = item.get("amount")
            if not (amount is None or type(amount) is int):
                _settle(item, f"data.contents[{index}]", inherited, issues)


#: The data types that have content items.
_WITH_CONTENTS: Final = frozenset(
    data_type for data_type, fields in spec.DATA_FIELDS.items() if "contents" in fields
)


def _settle(
    container: dict[str, object],
    path: str,
    inherited: object,
    issues: IssueCollector,
) -> None:
    """Settle the amount of *container*, which is not an int or None."""
    amount = container.get("amount")
    if isinstance(amount, Decimal):
        major, currency = amount, container.get("currency", inherited)
    elif isinstance(amount, float):
        issues.add(
            join(path, "amount"),
            "invalid_amount",
            f"a float cannot hold money exactly: {FLOAT_ADVICE}, got {_short(amount)}",
        )
        del container["amount"]
        return
    else:
        money = _money_parts(amount)
        if money is None:
            return  # not money at all: the validator says what an amount must be
        major, code = money
        given_currency = container.get("currency")
        if given_currency is None:
            container["currency"] = currency = code
            _upper_currency(container)
        elif not is_currency(given_currency):
            currency = given_currency  # reported once, below
        elif str.upper(given_currency) != str.upper(code):
            issues.add(
                join(path, "currency"),
                "currency_mismatch",
                f"is {given(given_currency)}, but amount is a Money in {given(code)}; "
                "leave currency out or make the two agree",
            )
            del container["amount"]
            return
        else:
            currency = code
    if currency is None:
        issues.add(
            join(path, "currency"),
            "missing_currency",
            "is required when amount is present: a Decimal amount is in the major "
            "units of that currency",
        )
        del container["amount"]
        return
    if not is_currency(currency):
        # The validator names the currency; an amount in it cannot be converted, and
        # a second error about that would only repeat the first.
        del container["amount"]
        return
    try:
        container["amount"] = to_minor_units(
            major, currency, field=join(path, "amount")
        )
    except EventValidationError as error:
        issues.issues.extend(error.issues)
        del container["amount"]


def _money_parts(value: object) -> tuple[Decimal, str] | None:
    """The amount and currency code of a py-moneyed or django-money ``Money``.

    Duck-typed, so that neither is a dependency: a ``Decimal`` ``amount`` and a
    ``currency`` that is a code or, as py-moneyed's ``Currency`` is, has a ``code``.
    """
    if isinstance(value, int | str):  # bool is an int
        return None
    amount = getattr(value, "amount", None)
    if not isinstance(amount, Decimal):
        return None
    currency = getattr(value, "currency", None)
    code = currency if isinstance(currency, str) else getattr(currency, "code", None)
    if not isinstance(code, str):
        return None
    return amount, code


def _upper_currency(container: dict[str, object]) -> None:
    # The API uppercases currency codes itself; doing it here keeps stored payloads
    # canonical. ASCII only: Unicode case mapping would turn "ınr" into "INR".
    currency = container.get("currency")
    if isinstance(currency, str) and str.isascii(currency):
        container["currency"] = str.upper(currency)
