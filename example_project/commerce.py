"""What the shop and billing apps share: the currencies they sell in, the phone rule.

Both exist so that the admin refuses, at the form, a value the Conversions API would
refuse later: an event that cannot be built is recorded as failed (or, with
``OPENAI_CAPI_RAISE_ERRORS``, raised from the admin's save), which is a worse place to
learn about a typo.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from django_openai_capi.api import normalize

#: Amounts are stored in the currency's minor unit: cents for USD, EUR and GBP, whole
#: yen for JPY (which has none). A short list keeps the demo's admin a dropdown.
CURRENCY_CHOICES = [
    ("USD", "US dollar"),
    ("EUR", "Euro"),
    ("GBP", "Pound sterling"),
    ("JPY", "Japanese yen"),
]


def validate_phone(value: str) -> None:
    """Refuse a phone number the API could not match: 8-15 digits with country code."""
    try:
        normalize("phone", value)
    except ValueError as exc:
        # The library's message never repeats the value, and neither does this.
        raise ValidationError(
            f"Not a phone number the Conversions API accepts: it {exc}."
        ) from None
