from __future__ import annotations

from decimal import Decimal

import pytest

from django_openai_capi.api import to_minor_units
from django_openai_capi.api.money import currency_exponent, is_currency
from django_openai_capi.exceptions import EventValidationError


@pytest.mark.parametrize(
    "amount,currency,minor",
    [
        (Decimal("25.99"), "USD", 2599),
        (Decimal("25.9"), "usd", 2590),
        (Decimal("8900"), "JPY", 8900),
        (Decimal("1.234"), "KWD", 1234),
        (Decimal("1.5"), "BHD", 1500),
        (Decimal("0.0001"), "CLF", 1),
        (Decimal("-3.10"), "EUR", -310),
        (12, "EUR", 1200),
        ("19.90", "CHF", 1990),
        (Decimal("25.990000"), "USD", 2599),
    ],
)
def test_major_units_become_the_currency_minor_unit(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    "amount,currency",
    [(Decimal("1.005"), "USD"), (Decimal("100.5"), "JPY"), (Decimal("0.0001"), "KWD")],
)
def test_a_conversion_that_would_lose_precision_is_refused(amount, currency):
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(amount, currency, field="data.amount")
    assert caught.value.path == "data.amount"
    assert caught.value.codes == ["amount_precision"]
    assert "decimal places" in str(caught.value)


def test_floats_are_refused_with_the_reason():
    with pytest.raises(
        EventValidationError, match="floats cannot represent money exactly"
    ):
        to_minor_units(25.99, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "amount", [True, None, "abc", Decimal("NaN"), Decimal("Infinity"), [1]]
)
def test_non_numbers_are_refused(amount):
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(amount, "USD")
    assert caught.value.codes == ["amount_type"]


@pytest.mark.parametrize("currency", ["XAU", "XXX", "ABC", "US", "", 840])
def test_unknown_or_unitless_currencies_are_refused(currency):
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(Decimal(1), currency)
    assert caught.value.path == "currency"


def test_exponents_come_from_iso_4217():
    assert [
        currency_exponent(code) for code in ("JPY", "USD", "KWD", "CLF", "XAU", "NOPE")
    ] == [0, 2, 3, 4, None, None]
    assert is_currency("eur") and not is_currency("euro") and not is_currency(None)


def test_the_decimal_context_cannot_round_the_result():
    import decimal

    with decimal.localcontext() as context:
        context.prec = 6
        assert to_minor_units(Decimal("12345.67"), "USD") == 1234567
        assert to_minor_units("99999.99", "USD") == 9999999
    assert to_minor_units(Decimal("12345678901234567.89"), "USD") == 1234567890123456789


@pytest.mark.parametrize(
    "amount", [Decimal("1E+999999"), Decimal("92233720368547758.08"), 10**30]
)
def test_amounts_beyond_64_bits_are_refused(amount):
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(amount, "USD")
    assert caught.value.codes == ["amount_too_large"]


def test_tiny_exponents_are_handled_without_building_huge_numbers():
    assert to_minor_units(Decimal("0E-99999999"), "USD") == 0
    with pytest.raises(EventValidationError, match="decimal places"):
        to_minor_units(Decimal("1E-99999999"), "USD")


def test_the_currency_problem_is_reported_beside_the_amount():
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(Decimal(1), "XXX", field="data.contents[0].amount")
    assert caught.value.path == "data.contents[0].currency"


def test_currency_case_folding_is_ascii_only():
    assert not is_currency("uſd")
    assert currency_exponent("ınr") is None


def test_a_currency_that_is_not_even_text_is_described_briefly():
    with pytest.raises(EventValidationError, match="got an integer"):
        to_minor_units(1, 10**5000)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", ["1" * 4301, 10**4301], ids=["str", "int"])
def test_amounts_too_long_to_convert_to_int_are_too_large_not_a_crash(amount):
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(amount, "USD")
    assert caught.value.codes == ["amount_too_large"]


def test_a_long_fraction_is_a_precision_error_not_a_crash():
    with pytest.raises(EventValidationError) as caught:
        to_minor_units(Decimal("1" * 4301 + "E-4300"), "USD")
    assert caught.value.codes == ["amount_precision"]
    assert len(str(caught.value)) < 200


def test_what_is_not_an_amount_or_a_currency_is_not_repeated():
    for amount, currency in [
        ("jane.roe@example.com", "USD"),
        (1, "jane.roe@example.com"),
    ]:
        with pytest.raises(EventValidationError) as caught:
            to_minor_units(amount, currency)  # type: ignore[arg-type]
        assert "jane.roe" not in str(caught.value)


def test_the_precision_error_names_the_currency_by_its_own_characters():
    # A str subclass's upper() could answer anything, an email address included.
    class Code(str):
        def upper(self) -> str:
            return "jane.roe@example.com"

    with pytest.raises(EventValidationError) as caught:
        to_minor_units(Decimal("1.005"), Code("usd"))
    assert str(caught.value) == (
        "amount: 1.005 USD has more than 2 decimal places; round it before "
        "converting [amount_precision]"
    )
