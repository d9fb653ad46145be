"""What the shop and billing apps share: the currencies they sell in, the phone rule.

Both exist so that the admin refuses, at the form, a value the Conversions API would
refuse later: an event that cannot be built is recorded as failed (or, with
``OPENAI_CAPI_RAISE_ERRORS``, raised from the admin's save), which is a worse place to
learn about a typo.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from django_openai_capi.api import normalize
from django_openai_capi.api.money import currency_exponent

#: A short list keeps the demo's admin a dropdown. Amounts are held as Django holds
#: money, a Decimal in major units (``Decimal("12.50")`` is USD 12.50), and the library
#: converts them to the API's minor units by each currency's ISO 4217 exponent.
CURRENCY_CHOICES = [
    ("USD", "US dollar"),
    ("EUR", "Euro"),
    ("GBP", "Pound sterling"),
    ("JPY", "Japanese yen"),
]


def money_field(help_text: str) -> models.DecimalField[Decimal, Decimal]:
    """A price column: a Decimal in the major units of the row's currency.

    Two decimal places because no currency offered has more (USD, EUR and GBP have
    two, JPY none: 8900 yen is ``Decimal("8900.00")``); a shop that added KWD or BHD,
    which have three, would need ``decimal_places=3``. Up to 99,999,999.99, which is
    room enough for a yen price.
    """
    return models.DecimalField(
        max_digits=10,
        decimal_places=2,
        validators=[MinValueValidator(Decimal(0))],
        help_text=help_text,
    )


def validate_amount(amount: Decimal | None, currency: str, field: str) -> None:
    """Refuse a price with more decimal places than its currency has (JPY 8900.50).

    The column takes two places for every currency; the API cannot take a fraction of
    a yen, and the event would fail at build time, after the order is saved.
    """
    exponent = currency_exponent(currency)
    if amount is None or exponent is None:
        return  # the field's own validation reports a missing price or currency
    if amount != amount.quantize(Decimal(1).scaleb(-exponent)):
        raise ValidationError(
            {
                field: f"{currency} has {exponent} decimal places: "
                f"{amount} has more. Round it."
            }
        )


def validate_phone(value: str) -> None:
    """Refuse a phone number the API could not match: 8-15 digits with country code."""
    try:
        normalize("phone", value)
    except ValueError as exc:
        # The library's message never repeats the value, and neither does this.
        raise ValidationError(
            f"Not a phone number the Conversions API accepts: it {exc}."
        ) from None
