"""Money as Django holds it: Decimals, Money objects and ints in ``build_event``.

A ``Decimal`` is major units of its container's currency, a py-moneyed / django-money
``Money`` major units of its own, an ``int`` minor units already; a float is refused.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import moneyed
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iso4217 import Currency as Iso4217

from django_openai_capi.api import build_event, encode_event, validate_event
from django_openai_capi.api.spec import MAX_INTEGER
from django_openai_capi.exceptions import EventValidationError

NOW = 1_760_000_000_000

#: Every ISO 4217 currency with a minor unit, and its exponent, from the table itself.
CURRENCIES: dict[str, int] = {
    currency.code: currency.exponent
    for currency in Iso4217
    if currency.exponent is not None
}


class MoneyCurrency:
    """py-moneyed's ``moneyed.Currency`` as far as money is concerned: a ``code``."""

    def __init__(self, code: object) -> None:
        self.code = code


class Money:
    """py-moneyed's ``moneyed.Money`` (and django-money's subclass of it): a Decimal
    ``amount`` and a ``Currency``. Neither package is a dependency, so this stands in."""

    def __init__(self, amount: str | Decimal, currency: str) -> None:
        self.amount = amount if isinstance(amount, Decimal) else Decimal(amount)
        self.currency = MoneyCurrency(currency.upper())


class CodeMoney:
    """A Money whose ``currency`` is the code itself, as some money types keep it."""

    def __init__(self, amount: str, currency: object) -> None:
        self.amount = Decimal(amount)
        self.currency = currency


def build(data: dict[str, Any], event_type: str = "order_created") -> dict[str, Any]:
    return build_event(event_type, event_id="o-1", event_time=NOW, now=NOW, data=data)


def problems(data: dict[str, Any], event_type: str = "order_created") -> list[str]:
    with pytest.raises(EventValidationError) as caught:
        build(data, event_type)
    return [str(issue) for issue in caught.value.issues]


# Decimals.


@pytest.mark.parametrize(
    "amount,currency,minor",
    [
        (Decimal("25.99"), "USD", 2599),
        (Decimal("25.9"), "usd", 2590),
        (Decimal("8900"), "JPY", 8900),
        (Decimal("1.234"), "KWD", 1234),
        (Decimal("0"), "EUR", 0),
        (Decimal("25.990000"), "USD", 2599),
    ],
)
def test_a_decimal_is_major_units_of_the_currency(amount, currency, minor):
    data = build({"amount": amount, "currency": currency})["data"]
    assert data == {"type": "contents", "amount": minor, "currency": currency.upper()}


def test_the_stored_json_is_the_json_of_the_int():
    contents = [{"id": "a", "quantity": 2, "amount": Decimal("10.00")}]
    as_decimals = build(
        {"amount": Decimal("25.99"), "currency": "USD", "contents": contents}
    )
    as_ints = build(
        {
            "amount": 2599,
            "currency": "USD",
            "contents": [{"id": "a", "quantity": 2, "amount": 1000}],
        }
    )
    assert encode_event(as_decimals) == encode_event(as_ints)
    assert type(as_decimals["data"]["amount"]) is int


def test_content_items_inherit_the_data_currency_or_use_their_own():
    data = build(
        {
            "amount": Decimal("100"),
            "currency": "KWD",
            "contents": [
                {"id": "a", "amount": Decimal("1.5")},
                {"id": "b", "amount": Decimal("1500"), "currency": "jpy"},
                {"id": "c", "amount": 7},
            ],
        }
    )["data"]
    assert data["amount"] == 100_000
    assert data["contents"] == [
        {"id": "a", "amount": 1500},
        {"id": "b", "amount": 1500, "currency": "JPY"},
        {"id": "c", "amount": 7},
    ]


def test_more_places_than_the_currency_has_is_refused_naming_the_item():
    contents = [
        {"id": "a", "amount": Decimal("1.00")},
        {"id": "b", "amount": Decimal("1.00")},
        {"id": "c", "amount": Decimal("1.005")},
    ]
    assert problems({"currency": "USD", "contents": contents}) == [
        "data.contents[2].amount: 1.005 USD has more than 2 decimal places; "
        "round it before converting [amount_precision]"
    ]


def test_a_negative_decimal_gets_the_range_rule():
    assert problems({"amount": Decimal("-25.99"), "currency": "USD"}) == [
        "data.amount: must be from 0 to 2**63-1, got -2599 [invalid_amount]"
    ]


def test_a_decimal_beyond_64_bits_is_refused():
    assert problems({"amount": Decimal("1e30"), "currency": "USD"}) == [
        "data.amount: must fit in a 64-bit integer [amount_too_large]"
    ]


def test_a_decimal_that_is_not_a_number_is_refused():
    assert problems({"amount": Decimal("NaN"), "currency": "USD"}) == [
        "data.amount: must be a finite number, got NaN [amount_type]"
    ]


# What goes wrong with the currency is said once.


def test_a_missing_currency_is_reported_once():
    assert problems({"amount": Decimal("25.99")}) == [
        "data.currency: is required when amount is present: a Decimal amount is in "
        "the major units of that currency [missing_currency]"
    ]


def test_an_item_with_no_currency_anywhere_is_reported_once_at_the_item():
    assert problems({"contents": [{"id": "a", "amount": Decimal("2")}]}) == [
        "data.contents[0].currency: is required when amount is present: a Decimal "
        "amount is in the major units of that currency [missing_currency]"
    ]


@pytest.mark.parametrize("currency", ["ABC", "XAU", "dollars", 840])
def test_an_unknown_currency_is_reported_once(currency):
    found = problems(
        {
            "amount": Decimal("25.99"),
            "currency": currency,
            "contents": [{"id": "a", "amount": Decimal("1.5")}],
        }
    )
    assert len(found) == 1
    assert found[0].startswith("data.currency: must be an ISO 4217 currency code")


# Money.


def test_a_money_fills_the_currency():
    data = build(
        {
            "amount": Money("25.99", "usd"),
            "contents": [
                {"id": "a", "amount": Money("1.234", "KWD")},
                {"id": "b", "amount": Decimal("3.50")},
            ],
        }
    )["data"]
    assert data == {
        "type": "contents",
        "amount": 2599,
        "currency": "USD",
        "contents": [
            {"id": "a", "amount": 1234, "currency": "KWD"},
            {"id": "b", "amount": 350},
        ],
    }


def test_a_money_whose_currency_is_a_code():
    data = build({"amount": CodeMoney("8900", "jpy"), "currency": "JPY"})["data"]
    assert data == {"type": "contents", "amount": 8900, "currency": "JPY"}


def test_a_money_and_a_currency_that_disagree_are_both_named():
    assert problems({"amount": Money("25.99", "EUR"), "currency": "usd"}) == [
        "data.currency: is 'USD', but amount is a Money in 'EUR'; leave currency out "
        "or make the two agree [currency_mismatch]"
    ]
    item = {"id": "a", "amount": Money("1", "EUR"), "currency": "GBP"}
    assert problems({"currency": "EUR", "contents": [item]}) == [
        "data.contents[0].currency: is 'GBP', but amount is a Money in 'EUR'; leave "
        "currency out or make the two agree [currency_mismatch]"
    ]


def test_a_money_beside_an_unknown_currency_is_reported_once():
    assert problems({"amount": Money("1", "EUR"), "currency": 5}) == [
        "data.currency: must be an ISO 4217 currency code such as 'USD', got 5 "
        "[invalid_currency]"
    ]


def test_a_money_in_a_currency_iso_4217_does_not_price_in_is_reported_once():
    found = problems({"amount": CodeMoney("1", "XAU")})
    assert found == [
        "data.currency: must be an ISO 4217 currency code such as 'USD', got 'XAU' "
        "[invalid_currency]"
    ]


def test_a_money_with_more_places_than_its_currency_has_is_refused():
    assert problems({"amount": Money("1.5", "JPY")}) == [
        "data.amount: 1.5 JPY has more than 0 decimal places; round it before "
        "converting [amount_precision]"
    ]


@pytest.mark.parametrize(
    "amount",
    [
        CodeMoney("1", None),
        CodeMoney("1", MoneyCurrency(None)),
        type("M", (), {"amount": 1.5})(),
    ],
)
def test_what_only_looks_like_money_is_left_to_the_amount_rule(amount):
    found = problems({"amount": amount, "currency": "USD"})
    assert len(found) == 1
    assert found[0].startswith(
        "data.amount: must be an integer in the currency's minor unit, got"
    )
    assert found[0].endswith(
        "(pass a Decimal in major units, a Money, or an int in minor units) "
        "[invalid_amount]"
    )


class Customer:
    """An object put where an amount goes by mistake, whose repr is personal data."""

    def __repr__(self) -> str:
        return "<Customer: ada@example.com>"


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (Customer(), "a value of type Customer"),
        ({"email": "ada@example.com"}, "{'email': a string of 15 characters}"),
        (["+14155550123"], "[a string of 12 characters]"),
        ({"total": Customer()}, "{'total': a value of type Customer}"),
        (b"ada@example.com", "a value of type bytes"),
    ],
)
def test_what_is_not_an_amount_is_described_not_echoed(amount, shown):
    # Errors are stored with the failed event and shown in the admin and logs.
    (found,) = problems({"amount": amount, "currency": "USD"})
    assert "example.com" not in found and "4155550123" not in found
    assert f"got {shown} (pass a Decimal" in found


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ([Decimal("1.5"), 2.5, None, True], "[Decimal('1.5'), 2.5, None, True]"),
        ({"amount": 1}, "{'amount': 1}"),
        (
            [type("Code", (str,), {})("USD"), type("Code", (str,), {})("a@b.cc")],
            "['USD', a string of 6 characters]",
        ),
        (Decimal("1." + "9" * 60), "Decimal('1.99999999999999999999999999..."),
        (type("Cents", (int,), {"__repr__": lambda self: "x@y.zz"})(5), None),
    ],
)
def test_numbers_and_names_inside_a_wrong_value_are_still_shown(amount, shown):
    found = problems({"amount": [amount], "currency": "USD"})
    assert "@" not in found[0]
    if shown is not None:
        assert f"got [{shown}]" in found[0]


def test_real_py_moneyed_money_is_accepted():
    data = build({"amount": moneyed.Money("25.99", "USD")})["data"]
    assert (data["amount"], data["currency"]) == (2599, "USD")


# Ints, floats and the rest.


def test_an_int_is_minor_units_and_passes_through():
    data = build(
        {
            "amount": 2599,
            "currency": "usd",
            "contents": [{"id": "a", "amount": 5, "currency": "eur"}],
        }
    )["data"]
    assert data == {
        "type": "contents",
        "amount": 2599,
        "currency": "USD",
        "contents": [{"id": "a", "amount": 5, "currency": "EUR"}],
    }


def test_a_float_is_refused_with_the_three_options():
    assert problems({"amount": 25.99, "currency": "USD"}) == [
        'data.amount: a float cannot hold money exactly: pass a Decimal in major units (Decimal("25.99")), '
        "a Money, or an int in minor units (2599), got 25.99 [invalid_amount]"
    ]


def test_a_float_in_an_item_is_named_by_its_place():
    found = problems(
        {
            "currency": "USD",
            "contents": [{"id": "a", "amount": 1}, {"id": "b", "amount": 0.5}],
        }
    )
    assert len(found) == 1
    assert found[0].startswith("data.contents[1].amount: a float cannot hold money")


def test_a_bool_is_still_refused():
    assert problems({"amount": True, "currency": "USD"}) == [
        "data.amount: must be an integer in the currency's minor unit, got True "
        "[invalid_amount]"
    ]


def test_items_where_the_data_type_allows_none_are_left_to_that_rule():
    found = problems({"contents": [{"id": "a", "amount": 0.5}, None]}, "lead_created")
    assert found == [
        "data.contents: is not allowed for data type 'customer_action' [field_not_allowed]"
    ]


def test_amounts_of_an_unknown_event_type_are_converted_in_data_only():
    with pytest.raises(EventValidationError) as caught:
        build_event(
            "purchase",
            event_id="o-1",
            now=NOW,
            data={
                "amount": Decimal("1"),
                "currency": "USD",
                "contents": [{"amount": 0.5}],
            },
        )
    assert caught.value.paths == ["type", "data.type"]


def test_the_hosts_own_data_is_left_as_given():
    item = {"id": "a", "amount": Decimal("1.50")}
    data = {"amount": Money("1.50", "USD"), "contents": [item]}
    build(data)
    assert data == {"amount": data["amount"], "contents": [item]}
    assert item == {"id": "a", "amount": Decimal("1.50")}


def test_the_validator_of_a_given_event_points_at_the_builders():
    event = {
        "id": "o-1",
        "type": "order_created",
        "timestamp_ms": NOW,
        "data": {"type": "contents", "amount": Decimal("25.99"), "currency": "USD"},
    }
    with pytest.raises(EventValidationError) as caught:
        validate_event(event, now=NOW)
    assert str(caught.value.issues[0]).endswith(
        "got Decimal('25.99') (an event built by track(), a ModelConversion or "
        "build_event() takes a Decimal in major units; to_minor_units() converts "
        "one by hand) [invalid_amount]"
    )


# Properties, for every currency with a minor unit.

PROPERTIES = settings(max_examples=300, deadline=None)


@pytest.mark.parametrize("code", sorted(CURRENCIES))
def test_every_currency_converts_by_its_exponent(code):
    exponent = CURRENCIES[code]
    amount = Decimal(123456789).scaleb(-exponent)  # exactly as many places as it has
    data = build({"amount": amount, "currency": code})["data"]
    assert data["amount"] == 123456789
    assert build({"amount": Money(amount, code)})["data"] == data
    one_more = Decimal(1234567891).scaleb(-exponent - 1)
    assert problems({"amount": one_more, "currency": code}) == [
        f"data.amount: {one_more} {code} has more than {exponent} decimal places; "
        "round it before converting [amount_precision]"
    ]


minor_amounts = st.integers(min_value=0, max_value=MAX_INTEGER)


@PROPERTIES
@given(
    code=st.sampled_from(sorted(CURRENCIES)),
    minor=minor_amounts,
    trim=st.booleans(),
    index=st.integers(min_value=0, max_value=3),
)
def test_decimals_with_at_most_the_exponents_places_convert_exactly(
    code, minor, trim, index
):
    exponent = CURRENCIES[code]
    amount = Decimal(minor).scaleb(-exponent)
    if trim:  # fewer places than the currency has: 25.9 USD, or 1E+2
        amount = amount.normalize()
    items = [{"id": "x", "amount": 1}] * index + [{"id": "y", "amount": amount}]
    data = build({"amount": amount, "currency": code, "contents": items})["data"]
    assert type(data["amount"]) is int
    assert Decimal(data["amount"]).scaleb(-exponent) == amount
    assert data["contents"][index]["amount"] == data["amount"] == minor
    # A Money of the same value agrees, and so does the int itself.
    assert build({"amount": Money(amount, code)})["data"]["amount"] == minor
    assert build({"amount": minor, "currency": code})["data"]["amount"] == minor


@PROPERTIES
@given(
    code=st.sampled_from(sorted(CURRENCIES)),
    whole=st.integers(min_value=0, max_value=10**12),
    extra=st.integers(min_value=1, max_value=5),
    last=st.integers(min_value=1, max_value=9),
    index=st.integers(min_value=0, max_value=3),
)
def test_more_places_than_the_exponent_are_refused_naming_the_field(
    code, whole, extra, last, index
):
    exponent = CURRENCIES[code]
    amount = Decimal(whole * 10 + last).scaleb(-exponent - extra)
    items = [{"id": "x", "amount": 1}] * index + [{"id": "y", "amount": amount}]
    with pytest.raises(EventValidationError) as caught:
        build({"currency": code, "contents": items})
    assert caught.value.paths == [f"data.contents[{index}].amount"]
    assert caught.value.codes == ["amount_precision"]
    with pytest.raises(EventValidationError) as caught:
        build({"amount": Money(amount, code)})
    assert caught.value.paths == ["data.amount"]


@PROPERTIES
@given(
    code=st.sampled_from(sorted(CURRENCIES)),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_every_float_is_refused(code, value):
    with pytest.raises(EventValidationError) as caught:
        build({"amount": value, "currency": code})
    assert caught.value.paths == ["data.amount"]
    message = str(caught.value.issues[0])
    assert "a Decimal in major units" in message and "a Money" in message
    assert "an int in minor units" in message


def test_what_is_not_money_reaches_the_rules_unchanged():
    found = problems(
        {
            "amount": "25.99",
            "currency": "usd",
            "contents": [None, {"id": "a", "currency": "eur"}],
        }
    )
    assert found == [
        "data.amount: must be an integer in the currency's minor unit, got a string "
        "of 5 characters (pass a Decimal in major units, a Money, or an int in minor "
        "units) [invalid_amount]",
        "data.contents[0]: a content item must be an object, got a value of type "
        "NoneType [invalid_type]",
    ]


def test_data_that_is_not_an_object_is_left_to_the_rules():
    with pytest.raises(EventValidationError) as caught:
        build_event("order_created", event_id="o-1", now=NOW, data=[1])  # type: ignore[arg-type]
    assert caught.value.paths == ["data"]


def test_an_event_type_that_is_not_text_is_left_to_the_rules():
    with pytest.raises(EventValidationError) as caught:
        build_event(None, event_id="o-1", now=NOW)  # type: ignore[arg-type]
    assert caught.value.paths == ["type", "data"]


# Whatever is put where money goes: errors never repeat personal data, and the host's
# own data is left as given.

PLANTED = "ada.lovelace@example.com"


class Planted:
    """A Money-shaped object (or not), whose repr is personal data."""

    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<Planted {PLANTED}>"


_leaves = st.one_of(
    st.decimals(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.just(PLANTED),
    st.sampled_from(["USD", "usd", "JPY", "KWD", "XAU", "ZZZ", "", "uſd"]),
)
_amounts = st.one_of(
    _leaves,
    st.builds(lambda a, c: Planted(amount=a, currency=c), _leaves, _leaves),
    st.builds(
        lambda a, c: Planted(amount=a, currency=Planted(code=c)), _leaves, _leaves
    ),
    st.lists(_leaves, max_size=2),
    st.dictionaries(st.sampled_from(["email", "amount"]), _leaves, max_size=2),
)
_items = st.fixed_dictionaries(
    {"id": st.just("sku-1")}, optional={"amount": _amounts, "currency": _leaves}
)
_data = st.fixed_dictionaries(
    {},
    optional={
        "amount": _amounts,
        "currency": _leaves,
        "contents": st.lists(_items, max_size=3),
    },
)


@PROPERTIES
@given(_data, st.sampled_from(["order_created", "lead_created", "trial_started"]))
def test_no_amount_or_currency_makes_an_error_repeat_personal_data(
    data: dict[str, Any], event_type: str
) -> None:
    before = repr(data)
    try:
        build(data, event_type)
    except EventValidationError as error:
        assert "lovelace" not in str(error)
    assert repr(data) == before
