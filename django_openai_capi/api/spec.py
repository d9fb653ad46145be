"""What the Conversions API accepts, as constants.

Source: https://developers.openai.com/ads/conversions-api and /ads/supported-events, in
the version with plural user lists (see ``shared/reference/conversions-api.md`` §3-§9).
"""

from __future__ import annotations

import re
from typing import Final

MAX_EVENTS_PER_REQUEST: Final = 1000

# The 7-day window and the 10-minute clock-skew allowance of ``timestamp_ms``.
MAX_EVENT_AGE_MS: Final = 7 * 24 * 60 * 60 * 1000
MAX_EVENT_SKEW_MS: Final = 10 * 60 * 1000

#: Every event type and the ``data.type`` it requires.
EVENT_DATA_TYPES: Final[dict[str, str]] = {
    "app_installed": "customer_action",
    "app_opened": "customer_action",
    "appointment_scheduled": "customer_action",
    "checkout_started": "contents",
    "contents_viewed": "contents",
    "custom": "custom",
    "items_added": "contents",
    "lead_created": "customer_action",
    "order_created": "contents",
    "page_viewed": "contents",
    "registration_completed": "customer_action",
    "subscription_created": "plan_enrollment",
    "trial_started": "plan_enrollment",
}
EVENT_TYPES: Final = frozenset(EVENT_DATA_TYPES)
STANDARD_EVENT_TYPES: Final = EVENT_TYPES - {"custom"}

#: App events are accepted only from the server, marked as coming from the app.
MOBILE_APP_EVENT_TYPES: Final = frozenset({"app_installed", "app_opened"})

ACTION_SOURCES: Final = frozenset(
    {"web", "mobile_app", "offline", "physical_store", "phone_call", "email", "other"}
)

EVENT_FIELDS: Final = frozenset(
    {
        "id",
        "type",
        "timestamp_ms",
        "custom_event_name",
        "oppref",
        "source_url",
        "action_source",
        "user",
        "opt_out",
        "data",
    }
)

REQUEST_FIELDS: Final = frozenset({"events", "validate_only", "integration_source"})

#: The fields each data shape allows besides ``type``; ``custom`` also takes any other key.
DATA_FIELDS: Final[dict[str, frozenset[str]]] = {
    "contents": frozenset({"amount", "currency", "contents"}),
    "customer_action": frozenset({"amount", "currency"}),
    "plan_enrollment": frozenset({"amount", "currency", "contents", "plan_id"}),
    "custom": frozenset({"amount", "currency", "contents", "plan_id"}),
}

CONTENT_STRING_FIELDS: Final = frozenset({"id", "group_id", "name", "content_type"})
CONTENT_FIELDS: Final = CONTENT_STRING_FIELDS | {
    "quantity",
    "amount",
    "currency",
    "variant_dict",
}

#: ``user`` fields holding SHA-256 digests, and the raw-identity key each is built from.
HASHED_USER_FIELDS: Final[dict[str, str]] = {
    "emails_sha256": "email",
    "phone_numbers_sha256": "phone",
    "external_ids_sha256": "external_id",
    "first_names_sha256": "first_name",
    "last_names_sha256": "last_name",
}
#: ``user`` fields sent raw as lists (the API normalises them itself).
GEO_USER_FIELDS: Final[dict[str, str]] = {
    "cities": "city",
    "regions": "region",
    "postal_codes": "postal_code",
    "countries": "country",
}
#: ``user`` fields sent raw as single strings.
SCALAR_USER_FIELDS: Final = frozenset(
    {"ip_address", "user_agent", "obref", "android_advertising_id"}
)
USER_FIELDS: Final = (
    frozenset(HASHED_USER_FIELDS) | frozenset(GEO_USER_FIELDS) | SCALAR_USER_FIELDS
)

#: The API uses the first three valid, unique values of each list and ignores the rest.
MAX_USER_LIST_VALUES: Final = 3
MAX_POSTAL_CODE_LENGTH: Final = 32

CUSTOM_EVENT_NAME_RE: Final = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?"
)
INTEGRATION_SOURCE_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SHA256_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")
COUNTRY_RE: Final = re.compile(r"[A-Za-z]{2}")
UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def is_integration_source(value: object) -> bool:
    """Whether the API accepts ``value`` as ``integration_source``.

    The API trims and lowercases before it validates; lowercasing is ASCII-only here,
    because Unicode case mapping turns e.g. the Kelvin sign into a plain ``k``.
    """
    if not isinstance(value, str) or not value.isascii():
        return False
    return INTEGRATION_SOURCE_RE.fullmatch(value.strip().lower()) is not None


#: The largest integer accepted where the API takes an integer (a signed 64-bit value):
#: larger ones are not real amounts, and JSON readers on the other side may not hold them.
MAX_INTEGER: Final = 2**63 - 1

#: How deep a custom field value may nest.
MAX_CUSTOM_DEPTH: Final = 32
