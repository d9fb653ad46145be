"""The documented rules of the Conversions API, as the fake enforces them.

Written from the reference (``conversions-api.md`` §3-§9), deliberately without the
app's own validator in ``django_openai_capi.api``: property tests compare the two,
which only means something if they share no code. Where the docs are silent, the fake
accepts; unknown fields are refused, because the docs enumerate every field and a
misspelt or legacy name (``event_id``, ``email_sha256``) is the commonest bug.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

from iso4217 import Currency

MAX_EVENTS: Final = 1000
MAX_AGE_MS: Final = 7 * 24 * 60 * 60 * 1000
MAX_AHEAD_MS: Final = 10 * 60 * 1000

EVENT_DATA_TYPES: Final = {
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
STANDARD_EVENT_NAMES: Final = frozenset(EVENT_DATA_TYPES) - {"custom"}
APP_EVENT_TYPES: Final = frozenset({"app_installed", "app_opened"})
ACTION_SOURCES: Final = frozenset(
    {"web", "mobile_app", "offline", "physical_store", "phone_call", "email", "other"}
)
REQUEST_FIELDS: Final = frozenset({"events", "validate_only", "integration_source"})
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
# ``custom`` data takes any other key as a custom field.
DATA_FIELDS: Final = {
    "contents": frozenset({"type", "amount", "currency", "contents"}),
    "customer_action": frozenset({"type", "amount", "currency"}),
    "plan_enrollment": frozenset({"type", "amount", "currency", "contents", "plan_id"}),
}
DATA_TYPES: Final = frozenset(DATA_FIELDS) | {"custom"}
CURRENCIES: Final = frozenset(currency.name for currency in Currency)

INTEGRATION_SOURCE_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
CUSTOM_EVENT_NAME_RE: Final = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?"
)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
UUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class Problem(NamedTuple):
    param: str
    code: str
    message: str


def problem(param: str, code: str, rule: str) -> Problem:
    return Problem(param, code, f"{param} {rule}.")


def check_request(body: dict[str, Any]) -> Problem | None:
    """The first problem with the request outside its events (``events`` is present)."""
    for key in body:
        if key not in REQUEST_FIELDS:
            return problem(key, "unknown_field", "is not a supported field")
    validate_only = body.get("validate_only")
    if validate_only is not None and not isinstance(validate_only, bool):
        return problem("validate_only", "invalid_type", "must be a boolean")
    source = body.get("integration_source")
    if source is not None and not is_integration_source(source):
        return problem(
            "integration_source",
            "invalid_integration_source",
            "must be 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    events = body["events"]
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
        return problem("events", "invalid_events", "must be a list of 1 to 1000 events")
    return None


def is_integration_source(value: object) -> bool:
    # The API trims and lowercases before validating.
    return (
        isinstance(value, str)
        and value.isascii()
        and INTEGRATION_SOURCE_RE.fullmatch(value.strip().lower()) is not None
    )


def check_event(event: object, at: str) -> list[Problem]:
    """Every problem of one event except its time window (see :func:`check_window`)."""
    if not isinstance(event, dict):
        return [problem(at, "invalid_type", "must be an object")]
    problems: list[Problem] = []
    if not event.keys() <= EVENT_FIELDS:
        problems.extend(
            problem(f"{at}.{key}", "unknown_field", "is not a supported field")
            for key in event
            if key not in EVENT_FIELDS
        )

    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        problems.append(
            _required_or_invalid(event_id, f"{at}.id", "must be a non-empty string")
        )
    event_type = event.get("type")
    expected_data_type = (
        EVENT_DATA_TYPES.get(event_type) if isinstance(event_type, str) else None
    )
    if expected_data_type is None:
        problems.append(
            _required_or_invalid(
                event_type, f"{at}.type", "must be a supported event type"
            )
        )
    timestamp = event.get("timestamp_ms")
    if type(timestamp) is not int:
        problems.append(
            _required_or_invalid(timestamp, f"{at}.timestamp_ms", "must be an integer")
        )

    known_type = None if expected_data_type is None else event_type
    _check_custom_event_name(event, known_type, at, problems)
    _check_source(event, known_type, at, problems)
    # An explicit null is taken as absent, as a pydantic model with defaults takes it.
    oppref = event.get("oppref")
    if oppref is not None and not isinstance(oppref, str):
        problems.append(problem(f"{at}.oppref", "invalid_type", "must be a string"))
    opt_out = event.get("opt_out")
    if opt_out is not None and not isinstance(opt_out, bool):
        problems.append(problem(f"{at}.opt_out", "invalid_type", "must be a boolean"))
    user = event.get("user")
    if user is not None:
        check_user(user, f"{at}.user", problems)
    data = event.get("data")
    if data is None:
        problems.append(problem(f"{at}.data", "missing_required_field", "is required"))
    else:
        check_data(data, event_type, expected_data_type, f"{at}.data", problems)
    return problems


def check_window(event: dict[str, Any], at: str, now_ms: int) -> Problem | None:
    """The time-window problem of an event that passed :func:`check_event`."""
    timestamp: int = event["timestamp_ms"]
    if timestamp < now_ms - MAX_AGE_MS:
        return Problem(
            f"{at}.timestamp_ms",
            "event_timestamp_too_old",
            "event_timestamp_ms must be within the last 7 days.",  # observed
        )
    if timestamp > now_ms + MAX_AHEAD_MS:
        # Not observed: worded like its sibling above.
        return Problem(
            f"{at}.timestamp_ms",
            "event_timestamp_too_new",
            "event_timestamp_ms must be no more than 10 minutes in the future.",
        )
    return None


def _required_or_invalid(value: object, param: str, rule: str) -> Problem:
    if value is None:
        return problem(param, "missing_required_field", "is required")
    return problem(param, "invalid_value", rule)


def _check_custom_event_name(
    event: dict[str, Any], event_type: str | None, at: str, problems: list[Problem]
) -> None:
    name = event.get("custom_event_name")
    param = f"{at}.custom_event_name"
    if event_type == "custom":
        if name is None:
            problems.append(
                problem(param, "missing_custom_event_name", "is required for custom")
            )
        elif not isinstance(name, str) or not CUSTOM_EVENT_NAME_RE.fullmatch(name):
            problems.append(
                problem(
                    param,
                    "invalid_custom_event_name",
                    "must be 1-64 letters, digits, '_' or '-', starting and ending with a letter or digit",
                )
            )
        elif name.lower() in STANDARD_EVENT_NAMES:
            problems.append(
                problem(
                    param,
                    "invalid_custom_event_name",
                    "must not be a standard event name",
                )
            )
    # With an unknown type, whether the name is allowed cannot be said.
    elif name is not None and event_type is not None:
        problems.append(
            problem(
                param, "custom_event_name_not_allowed", "is only allowed for custom"
            )
        )


def _check_source(
    event: dict[str, Any], event_type: str | None, at: str, problems: list[Problem]
) -> None:
    source = event.get("action_source")
    if source is not None and not (
        isinstance(source, str) and source in ACTION_SOURCES
    ):
        problems.append(
            problem(
                f"{at}.action_source",
                "invalid_action_source",
                "must be one of " + ", ".join(sorted(ACTION_SOURCES)),
            )
        )
    elif event_type in APP_EVENT_TYPES and source != "mobile_app":
        problems.append(
            problem(
                f"{at}.action_source",
                "invalid_action_source",
                "must be mobile_app for app_installed and app_opened",
            )
        )
    url = event.get("source_url")
    if url is None:
        if source == "web":
            problems.append(
                problem(
                    f"{at}.source_url",
                    "missing_source_url",
                    "is required when action_source is web",
                )
            )
    elif not _has_scheme_and_host(url):
        problems.append(
            problem(
                f"{at}.source_url",
                "invalid_source_url",
                "must be a URL with a scheme and a host",
            )
        )


def _has_scheme_and_host(url: object) -> bool:
    return isinstance(url, str) and _is_url(url)


# Batches repeat the same few URLs; parsing each once keeps big batches cheap.
@functools.lru_cache(maxsize=1024)
def _is_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.scheme and parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def check_data(
    data: object,
    event_type: object,
    expected_data_type: str | None,
    at: str,
    problems: list[Problem],
) -> None:
    if not isinstance(data, dict):
        problems.append(problem(at, "invalid_type", "must be an object"))
        return
    data_type = data.get("type")
    if data_type is None:
        # Observed: code and message of a missing data.type.
        problems.append(
            problem(
                f"{at}.type",
                "missing_event_data_type",
                "must be a supported data type",
            )
        )
    elif not isinstance(data_type, str) or data_type not in DATA_TYPES:
        problems.append(
            problem(f"{at}.type", "invalid_data_type", "must be a supported data type")
        )
    elif expected_data_type is not None and data_type != expected_data_type:
        problems.append(
            problem(
                f"{at}.type",
                "invalid_data_type",
                f"must be {expected_data_type} for {event_type}",
            )
        )
    allowed = DATA_FIELDS.get(data_type) if isinstance(data_type, str) else None
    if allowed is not None and not data.keys() <= allowed:
        problems.extend(
            problem(
                f"{at}.{key}", "field_not_allowed", f"is not allowed in {data_type}"
            )
            for key in data
            if key not in allowed
        )
    _check_money(data, at, None, problems)
    plan_id = data.get("plan_id")
    if plan_id is not None and not isinstance(plan_id, str):
        problems.append(problem(f"{at}.plan_id", "invalid_type", "must be a string"))
    contents = data.get("contents")
    if contents is None:
        return
    if not isinstance(contents, list):
        problems.append(problem(f"{at}.contents", "invalid_type", "must be a list"))
        return
    currency = data.get("currency")
    for index, item in enumerate(contents):
        _check_content(item, f"{at}.contents[{index}]", currency, problems)


def _check_money(
    holder: dict[str, Any], at: str, fallback_currency: object, problems: list[Problem]
) -> None:
    amount = holder.get("amount")
    currency = holder.get("currency")
    if amount is not None:
        if type(amount) is not int or amount < 0:
            problems.append(
                problem(
                    f"{at}.amount",
                    "invalid_amount",
                    "must be a non-negative integer in the currency's minor unit",
                )
            )
        if currency is None and fallback_currency is None:
            problems.append(
                problem(
                    f"{at}.currency",
                    "missing_currency",
                    "is required when amount is set",
                )
            )
    if currency is not None and not (
        isinstance(currency, str) and currency.upper() in CURRENCIES
    ):
        problems.append(
            problem(
                f"{at}.currency",
                "invalid_currency",
                "must be a three-letter ISO 4217 code",
            )
        )


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _is_filled_string(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_integer(value: object) -> bool:
    return type(value) is int


def _is_string_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(item, str) for item in value.values()
    )


Rule = tuple[Callable[[object], bool], str, str]

# Item amount and currency are checked together, by ``_check_money``.
CONTENT_RULES: Final[dict[str, Rule | None]] = {
    "id": (_is_string, "invalid_type", "must be a string"),
    "group_id": (_is_string, "invalid_type", "must be a string"),
    "name": (_is_string, "invalid_type", "must be a string"),
    "content_type": (_is_filled_string, "invalid_type", "must be a non-empty string"),
    "quantity": (_is_integer, "invalid_type", "must be an integer"),
    "variant_dict": (_is_string_map, "invalid_type", "must map strings to strings"),
    "amount": None,
    "currency": None,
}


def _check_content(
    item: object, at: str, data_currency: object, problems: list[Problem]
) -> None:
    if not isinstance(item, dict):
        problems.append(problem(at, "invalid_type", "must be an object"))
        return
    _check_fields(item, CONTENT_RULES, at, problems)
    # An item amount may rely on the event-level currency (reference §7).
    _check_money(item, at, data_currency, problems)


def _check_fields(
    holder: dict[str, Any],
    rules: dict[str, Rule | None],
    at: str,
    problems: list[Problem],
) -> None:
    for key, value in holder.items():
        if key not in rules:
            problems.append(
                problem(f"{at}.{key}", "unknown_field", "is not a supported field")
            )
            continue
        rule = rules[key]
        if rule is not None and value is not None and not rule[0](value):
            problems.append(problem(f"{at}.{key}", rule[1], rule[2]))


def _is_hash_list(value: object) -> bool:
    if not isinstance(value, list):
        return False
    for item in value:
        if not isinstance(item, str) or not SHA256_RE.fullmatch(item):
            return False
    return True


def _is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_ip_address(value: object) -> bool:
    if not isinstance(value, str):
        return False
    # The common case without the cost of the ipaddress module.
    if IPV4_RE.fullmatch(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_uuid(value: object) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


_HASHES: Final[Rule] = (
    _is_hash_list,
    "invalid_hash",
    "must be a list of lowercase 64-character hex SHA-256 digests",
)
_RAW_LIST: Final[Rule] = (_is_string_list, "invalid_type", "must be a list of strings")

# The current (plural list) user object, reference §9.1. Invalid raw geo values are
# skipped by the API rather than rejected (its "first three valid values"), so only
# their type is checked; the hash format is checked because the docs require it.
USER_RULES: Final[dict[str, Rule | None]] = {
    "emails_sha256": _HASHES,
    "phone_numbers_sha256": _HASHES,
    "external_ids_sha256": _HASHES,
    "first_names_sha256": _HASHES,
    "last_names_sha256": _HASHES,
    "regions": _RAW_LIST,
    "postal_codes": _RAW_LIST,
    "cities": _RAW_LIST,
    "countries": _RAW_LIST,
    "android_advertising_id": (_is_uuid, "invalid_value", "must be a UUID"),
    "obref": (_is_filled_string, "invalid_value", "must be a non-blank string"),
    "ip_address": (
        _is_ip_address,
        "invalid_ip_address",
        "must be a valid IPv4 or IPv6 address",
    ),
    "user_agent": (_is_filled_string, "invalid_value", "must be a non-empty string"),
}


def check_user(user: object, at: str, problems: list[Problem]) -> None:
    if not isinstance(user, dict):
        problems.append(problem(at, "invalid_type", "must be an object"))
        return
    _check_fields(user, USER_RULES, at, problems)
