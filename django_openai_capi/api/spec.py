"""What the Conversions API accepts, as constants.

Source: https://developers.openai.com/ads/conversions-api and /ads/supported-events, in
the version with plural user lists (see ``shared/reference/conversions-api.md`` §3-§9).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

MAX_EVENTS_PER_REQUEST: Final = 1000

# The 7-day window and the 10-minute clock-skew allowance of ``timestamp_ms``.
MAX_EVENT_AGE_MS: Final = 7 * 24 * 60 * 60 * 1000
MAX_EVENT_SKEW_MS: Final = 10 * 60 * 1000


class EventType(StrEnum):
    """The API's event types, as names in code: ``EventType.ORDER_CREATED``.

    Each member is the string the API takes (``EventType.ORDER_CREATED`` is
    ``"order_created"``) and is accepted wherever an event type is, as a string is.
    The ``data.type`` each requires is in :data:`EVENT_DATA_TYPES`, and when to use it
    in :data:`EVENT_TYPE_DESCRIPTIONS`.
    """

    # In the order of their names: EVENT_DATA_TYPES, and the model field's choices
    # made from it, keep that order.
    APP_INSTALLED = "app_installed"
    APP_OPENED = "app_opened"
    APPOINTMENT_SCHEDULED = "appointment_scheduled"
    CHECKOUT_STARTED = "checkout_started"
    CONTENTS_VIEWED = "contents_viewed"
    CUSTOM = "custom"
    ITEMS_ADDED = "items_added"
    LEAD_CREATED = "lead_created"
    ORDER_CREATED = "order_created"
    PAGE_VIEWED = "page_viewed"
    REGISTRATION_COMPLETED = "registration_completed"
    SUBSCRIPTION_CREATED = "subscription_created"
    TRIAL_STARTED = "trial_started"


# Keyed by the members, and read below for every member: a type added to the enum
# without its data type and description fails the import, so the names in code, the
# names checked and the ones documented cannot differ.
_EVENT_TYPE_TABLE: Final[dict[EventType, tuple[str, str]]] = {
    EventType.APP_INSTALLED: (
        "customer_action",
        "The app was installed; sent from the server only, with action_source "
        "'mobile_app'.",
    ),
    EventType.APP_OPENED: (
        "customer_action",
        "The app was opened; sent from the server only, with action_source "
        "'mobile_app'.",
    ),
    EventType.APPOINTMENT_SCHEDULED: (
        "customer_action",
        "A meeting, a demo or a consultation was booked.",
    ),
    EventType.CHECKOUT_STARTED: ("contents", "A checkout was started."),
    EventType.CONTENTS_VIEWED: (
        "contents",
        "A product, a listing or an article was viewed.",
    ),
    EventType.CUSTOM: (
        "custom",
        "Anything the other types do not cover; needs a custom_event_name, and "
        "cannot be a campaign's optimization goal.",
    ),
    EventType.ITEMS_ADDED: (
        "contents",
        "Items were added to a cart, a bundle or a selection.",
    ),
    EventType.LEAD_CREATED: (
        "customer_action",
        "A lead form was sent or a contact requested.",
    ),
    EventType.ORDER_CREATED: ("contents", "A purchase was completed."),
    EventType.PAGE_VIEWED: ("contents", "A page, or an important one, was loaded."),
    EventType.REGISTRATION_COMPLETED: (
        "customer_action",
        "An account or event registration was finished.",
    ),
    EventType.SUBSCRIPTION_CREATED: ("plan_enrollment", "A paid subscription started."),
    EventType.TRIAL_STARTED: ("plan_enrollment", "A free trial started."),
}

#: Every event type and the ``data.type`` it requires, as plain strings.
EVENT_DATA_TYPES: Final[dict[str, str]] = {
    event_type.value: _EVENT_TYPE_TABLE[event_type][0] for event_type in EventType
}
#: Every event type and when to use it, in one line.
EVENT_TYPE_DESCRIPTIONS: Final[dict[str, str]] = {
    event_type.value: _EVENT_TYPE_TABLE[event_type][1] for event_type in EventType
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
