"""The documented rules of the Conversions API, checked before anything is sent.

The API rejects a whole batch of up to 1,000 events for one bad event, so every rule it
documents is checked here, per event, and every problem is reported with the field path
the API itself would use (``events[3].data.contents[0].quantity``).
"""

from __future__ import annotations

import math
import re
import reprlib
import time
from collections.abc import Collection, Mapping
from typing import Final, TypeGuard
from urllib.parse import unquote, urlsplit

from django_openai_capi.api import spec
from django_openai_capi.api.canonical import dumps
from django_openai_capi.api.identity import (
    Rejected,
    describe,
    normalize_raw,
)
from django_openai_capi.api.issues import IssueCollector, join
from django_openai_capi.api.money import is_currency

# Raw email addresses in free-text fields (a custom field, a product name, a URL's query
# string) are the usual way personal data leaks into conversion payloads.
# Text is split into tokens first and each token matched whole, with patterns that
# cannot backtrack: a regex search over free text was quadratic (1.8 s for 20 kB).
_TOKEN_BREAK: Final = re.compile(r"[\s/?&=:,;<>()\[\]\"'|“”‘’«»]+")
_EMAIL_TOKEN: Final = re.compile(r"[^@]+@(?:[^.@]+\.)+[A-Za-z]{2,}")


def looks_like_email(text: str) -> bool:
    if "@" not in text:
        return False
    return any(
        _EMAIL_TOKEN.fullmatch(token.rstrip("."))
        for token in _TOKEN_BREAK.split(text)
        if "@" in token
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40
_REPR.maxlevel = 2


def _given(value: object) -> str:
    """A short repr for fields that hold names and numbers, never free text or identity."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an int too long to print (over 4,300 digits)
        return describe(value)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _one_of(value: object, allowed: Collection[str]) -> bool:
    # Values come from arbitrary JSON: a list or dict must not reach a hash lookup.
    return isinstance(value, str) and value in allowed


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip()) and _encodable(value)


def validate_request(body: object, *, now: int | None = None) -> None:
    """Check a whole request body; raise :class:`EventValidationError` listing every problem."""
    issues = IssueCollector()
    check_request(body, issues, now=now)
    issues.raise_if_any()


def validate_event(event: object, *, path: str = "", now: int | None = None) -> None:
    """Check one event; raise :class:`EventValidationError` listing every problem.

    ``path`` prefixes every reported field (``events[3]``); ``now`` is the current time in
    milliseconds (for the 7-day window), the real clock when omitted.
    """
    issues = IssueCollector()
    check_event(event, path, issues, now=now)
    issues.raise_if_any()


def check_request(
    body: object, issues: IssueCollector, *, now: int | None = None
) -> None:
    if not isinstance(body, Mapping):
        issues.add(
            "",
            "invalid_type",
            f"the request body must be an object, got {describe(body)}",
        )
        return
    for key in body:
        if key not in spec.REQUEST_FIELDS:
            issues.add(
                str(key),
                "unknown_field",
                f"is not a request field; use {', '.join(sorted(spec.REQUEST_FIELDS))}",
            )
    if "validate_only" in body and not isinstance(body["validate_only"], bool):
        issues.add(
            "validate_only",
            "invalid_type",
            f"must be true or false, got {_given(body['validate_only'])}",
        )
    if "integration_source" in body:
        check_integration_source(
            body["integration_source"], "integration_source", issues
        )
    events = body.get("events")
    if not isinstance(events, list):
        issues.add(
            "events",
            "missing_events" if events is None else "invalid_type",
            "must be a list of 1 to 1000 events",
        )
        return
    if not 1 <= len(events) <= spec.MAX_EVENTS_PER_REQUEST:
        issues.add(
            "events",
            "invalid_batch_size",
            f"must hold 1 to {spec.MAX_EVENTS_PER_REQUEST} events, got {len(events)}",
        )
    moment = now_ms() if now is None else now
    for index, event in enumerate(events):
        check_event(event, f"events[{index}]", issues, now=moment)


def check_integration_source(value: object, path: str, issues: IssueCollector) -> None:
    # The API trims and lowercases before validating, so the same is done here.
    if not spec.is_integration_source(value):
        issues.add(
            path,
            "invalid_integration_source",
            "must be 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit, "
            f"got {_given(value)}",
        )


def check_event(
    event: object, path: str, issues: IssueCollector, *, now: int | None = None
) -> None:
    if not isinstance(event, Mapping):
        issues.add(
            path, "invalid_type", f"an event must be an object, got {describe(event)}"
        )
        return
    known = len(issues.issues)
    _check_event_fields(event, path, issues, now_ms() if now is None else now)
    if len(issues.issues) == known:
        _check_encodable(event, path, issues)


def _check_encodable(
    event: Mapping[object, object], path: str, issues: IssueCollector
) -> None:
    # The rules above cover what JSON can carry; this catches what they cannot foresee
    # (a mapping type json does not know, a cycle), so that a valid event always encodes.
    try:
        dumps(event).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        issues.add(
            path, "not_json", f"cannot be encoded as JSON ({type(error).__name__})"
        )


def _check_event_fields(
    event: Mapping[object, object], path: str, issues: IssueCollector, now: int
) -> None:
    for key in event:
        if key not in spec.EVENT_FIELDS:
            issues.add(
                join(path, key),
                "unknown_field",
                f"is not an event field; use {', '.join(sorted(spec.EVENT_FIELDS))}",
            )

    if not _is_text(event.get("id")):
        issues.add(
            join(path, "id"),
            "missing_id" if "id" not in event else "invalid_id",
            "must be a non-empty string",
        )

    event_type = event.get("type")
    if not _one_of(event_type, spec.EVENT_TYPES):
        issues.add(
            join(path, "type"),
            "missing_type" if event_type is None else "invalid_type",
            f"must be one of {', '.join(sorted(spec.EVENT_TYPES))}, got {_given(event_type)}",
        )
        event_type = None

    _check_timestamp(event.get("timestamp_ms"), join(path, "timestamp_ms"), issues, now)
    _check_custom_event_name(event, event_type, path, issues)
    action_source = _check_action_source(event, event_type, path, issues)
    _check_source_url(event, action_source, path, issues)

    if "oppref" in event and not _is_text(event["oppref"]):
        issues.add(
            join(path, "oppref"),
            "invalid_oppref",
            f"must be a non-empty string, got {describe(event['oppref'])}",
        )
    if "opt_out" in event and not isinstance(event["opt_out"], bool):
        issues.add(
            join(path, "opt_out"),
            "invalid_type",
            f"must be true or false, got {_given(event['opt_out'])}",
        )
    if "user" in event:
        check_user(event["user"], join(path, "user"), issues)

    data_path = join(path, "data")
    if "data" not in event:
        issues.add(data_path, "missing_data", "is required")
    else:
        check_data(event["data"], event_type, data_path, issues)


def _check_timestamp(
    value: object, path: str, issues: IssueCollector, now: int
) -> None:
    if value is None:
        issues.add(path, "missing_timestamp", "is required: Unix time in milliseconds")
    elif isinstance(value, bool) or not isinstance(value, int):
        issues.add(
            path,
            "invalid_type",
            f"must be an integer of milliseconds since the epoch, got {_given(value)}",
        )
    elif value < now - spec.MAX_EVENT_AGE_MS:
        issues.add(
            path,
            "event_timestamp_too_old",
            f"must be within the last 7 days, got {_given(value)}",
        )
    elif value > now + spec.MAX_EVENT_SKEW_MS:
        issues.add(
            path,
            "event_timestamp_in_future",
            f"must be no more than 10 minutes ahead, got {_given(value)}",
        )


def _check_custom_event_name(
    event: Mapping[object, object],
    event_type: object,
    path: str,
    issues: IssueCollector,
) -> None:
    name_path = join(path, "custom_event_name")
    name = event.get("custom_event_name")
    if event_type != "custom":
        # With an unknown type, whether a name is allowed cannot be said: stay quiet.
        if event_type is not None and "custom_event_name" in event:
            issues.add(
                name_path,
                "custom_event_name_not_allowed",
                "is allowed only with type 'custom'",
            )
        return
    if name is None:
        issues.add(
            name_path, "missing_custom_event_name", "is required when type is 'custom'"
        )
    elif not isinstance(name, str) or not spec.CUSTOM_EVENT_NAME_RE.fullmatch(name):
        issues.add(
            name_path,
            "invalid_custom_event_name",
            "must be 1-64 letters, digits, '_' or '-', starting and ending with a letter or digit, "
            f"got {describe(name)}",
        )
    elif name.lower() in spec.STANDARD_EVENT_TYPES:
        issues.add(
            name_path,
            "invalid_custom_event_name",
            f"must not be a standard event name; use type {name.lower()!r} instead",
        )


def _check_action_source(
    event: Mapping[object, object],
    event_type: object,
    path: str,
    issues: IssueCollector,
) -> object:
    source_path = join(path, "action_source")
    source = event.get("action_source")
    if source is not None and not _one_of(source, spec.ACTION_SOURCES):
        issues.add(
            source_path,
            "invalid_action_source",
            f"must be one of {', '.join(sorted(spec.ACTION_SOURCES))}, got {_given(source)}",
        )
    elif _one_of(event_type, spec.MOBILE_APP_EVENT_TYPES) and source != "mobile_app":
        issues.add(
            source_path,
            "invalid_action_source",
            f"must be 'mobile_app' for {event_type}, got {_given(source)}",
        )
    return source


def _check_source_url(
    event: Mapping[object, object],
    action_source: object,
    path: str,
    issues: IssueCollector,
) -> None:
    url_path = join(path, "source_url")
    url = event.get("source_url")
    if url is None:
        if action_source == "web":
            issues.add(
                url_path,
                "missing_source_url",
                "is required when action_source is 'web'",
            )
        return
    if not isinstance(url, str):
        issues.add(
            url_path, "invalid_type", f"must be a URL string, got {describe(url)}"
        )
        return
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or not _encodable(url):
        issues.add(
            url_path,
            "invalid_source_url",
            f"must be an http(s) URL with a host, got {describe(url)}",
        )
    # Only the query and fragment: paths such as /img/logo@2x.png are not addresses.
    elif looks_like_email(unquote(parts.query)) or looks_like_email(
        unquote(parts.fragment)
    ):
        issues.add(
            url_path,
            "raw_identifier",
            "contains what looks like an email address; remove personal data from the URL",
        )


def check_user(user: object, path: str, issues: IssueCollector) -> None:
    """Check the API form of ``user``: hashes only where hashes belong, raw geo elsewhere."""
    if not isinstance(user, Mapping):
        issues.add(path, "invalid_type", f"must be an object, got {describe(user)}")
        return
    for key, value in user.items():
        field_path = join(path, key)
        if key in spec.HASHED_USER_FIELDS:
            for item_path, item in _list_items(value, field_path, issues):
                if not (isinstance(item, str) and spec.SHA256_HEX_RE.fullmatch(item)):
                    issues.add(
                        item_path,
                        "raw_identifier",
                        f"must be a lowercase hex SHA-256 digest, never a raw identifier (got {describe(item)})",
                    )
        elif key in spec.GEO_USER_FIELDS:
            for item_path, item in _list_items(value, field_path, issues):
                _check_raw_value(spec.GEO_USER_FIELDS[key], item, item_path, issues)
        elif key in spec.SCALAR_USER_FIELDS:
            _check_raw_value(key, value, field_path, issues)
        else:
            issues.add(
                field_path,
                "unknown_field",
                f"is not a user field; use {', '.join(sorted(spec.USER_FIELDS))}",
            )


def _list_items(
    value: object, path: str, issues: IssueCollector
) -> list[tuple[str, object]]:
    if not isinstance(value, list):
        issues.add(
            path, "invalid_type", f"must be a list of strings, got {describe(value)}"
        )
        return []
    return [(f"{path}[{index}]", item) for index, item in enumerate(value)]


def _check_raw_value(
    key: str, value: object, path: str, issues: IssueCollector
) -> None:
    # The same rules as when identity is built, so a hand-made user object and a built
    # one can never be judged differently.
    if not _is_text(value):
        issues.add(
            path, "invalid_type", f"must be a non-empty string, got {describe(value)}"
        )
        return
    try:
        normalize_raw(key, value)
    except Rejected as rejected:
        issues.add(path, rejected.code, rejected.message)


def check_data(
    data: object, event_type: object, path: str, issues: IssueCollector
) -> None:
    if not isinstance(data, Mapping):
        issues.add(path, "invalid_type", f"must be an object, got {describe(data)}")
        return
    data_type = data.get("type")
    expected = (
        spec.EVENT_DATA_TYPES.get(event_type) if isinstance(event_type, str) else None
    )
    type_path = join(path, "type")
    if data_type is None:
        issues.add(
            type_path,
            "missing_event_data_type",
            f"is required{f' and must be {expected!r}' if expected else ''}",
        )
    elif not _one_of(data_type, spec.DATA_FIELDS):
        issues.add(
            type_path,
            "invalid_event_data_type",
            f"must be one of {', '.join(sorted(spec.DATA_FIELDS))}, got {_given(data_type)}",
        )
    elif expected is not None and data_type != expected:
        issues.add(
            type_path,
            "invalid_event_data_type",
            f"must be {expected!r} for {event_type}, got {data_type!r}",
        )
    shape = data_type if _one_of(data_type, spec.DATA_FIELDS) else expected
    allowed = (
        spec.DATA_FIELDS.get(shape, frozenset())
        if isinstance(shape, str)
        else frozenset()
    )

    for key, value in data.items():
        if key == "type":
            continue
        key_path = join(path, key)
        if not isinstance(key, str):
            issues.add(
                key_path,
                "invalid_type",
                f"field names must be strings, got {describe(key)}",
            )
        elif shape == "custom" and key not in allowed:
            _check_custom_field(value, key_path, issues, depth=1)
        elif shape is not None and key not in allowed:
            issues.add(
                key_path,
                "field_not_allowed",
                _not_allowed_message(str(key), str(shape)),
            )

    _check_money(data, path, issues, inherited_currency=None)
    if (
        "plan_id" in data
        and shape in ("plan_enrollment", "custom")
        and not _is_text(data["plan_id"])
    ):
        issues.add(
            join(path, "plan_id"),
            "invalid_type",
            f"must be a non-empty string, got {describe(data['plan_id'])}",
        )
    if "contents" in data and "contents" in allowed:
        _check_contents(
            data["contents"], join(path, "contents"), data.get("currency"), issues
        )


def _not_allowed_message(key: str, shape: str) -> str:
    if key == "contents":
        return f"is not allowed for data type {shape!r}"
    if key == "plan_id":
        return "is allowed only for data types 'plan_enrollment' and 'custom'"
    return f"is not a field of data type {shape!r}; custom fields are allowed only for type 'custom'"


def _check_money(
    container: Mapping[object, object],
    path: str,
    issues: IssueCollector,
    *,
    inherited_currency: object,
) -> None:
    amount_path, currency_path = join(path, "amount"), join(path, "currency")
    if "amount" in container:
        amount = container["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int):
            hint = (
                ""
                if isinstance(amount, bool)
                else " (to_minor_units() converts a Decimal)"
            )
            issues.add(
                amount_path,
                "invalid_amount",
                f"must be an integer in the currency's minor unit, got {_given(amount)}{hint}",
            )
        elif not 0 <= amount <= spec.MAX_INTEGER:
            issues.add(
                amount_path,
                "invalid_amount",
                f"must be from 0 to 2**63-1, got {_given(amount)}",
            )
        if "currency" not in container and not is_currency(inherited_currency):
            issues.add(
                currency_path, "missing_currency", "is required when amount is present"
            )
    if "currency" in container and not is_currency(container["currency"]):
        issues.add(
            currency_path,
            "invalid_currency",
            f"must be an ISO 4217 currency code such as 'USD', got {_given(container['currency'])}",
        )


def _check_contents(
    contents: object, path: str, currency: object, issues: IssueCollector
) -> None:
    if not isinstance(contents, list):
        issues.add(
            path,
            "invalid_type",
            f"must be a list of content items, got {describe(contents)}",
        )
        return
    for index, item in enumerate(contents):
        item_path = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            issues.add(
                item_path,
                "invalid_type",
                f"a content item must be an object, got {describe(item)}",
            )
            continue
        for key, value in item.items():
            key_path = join(item_path, key)
            if key not in spec.CONTENT_FIELDS:
                issues.add(
                    key_path,
                    "unknown_field",
                    f"is not a content field; use {', '.join(sorted(spec.CONTENT_FIELDS))}",
                )
            elif key in spec.CONTENT_STRING_FIELDS:
                if not _is_text(value):
                    issues.add(
                        key_path,
                        "invalid_type",
                        f"must be a non-empty string, got {describe(value)}",
                    )
                elif looks_like_email(value):
                    issues.add(
                        key_path,
                        "raw_identifier",
                        "contains what looks like an email address",
                    )
            elif key == "quantity" and not (
                _is_int(value) and 1 <= value <= spec.MAX_INTEGER
            ):
                issues.add(
                    key_path,
                    "invalid_quantity",
                    f"must be a positive integer, got {_given(value)}",
                )
            elif key == "variant_dict":
                _check_variant_dict(value, key_path, issues)
        _check_money(item, item_path, issues, inherited_currency=currency)


def _check_variant_dict(value: object, path: str, issues: IssueCollector) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and _encodable(k) and isinstance(v, str) and _encodable(v)
        for k, v in value.items()
    ):
        issues.add(
            path,
            "invalid_variant_dict",
            f"must map strings to strings, got {describe(value)}",
        )


def _check_custom_field(
    value: object, path: str, issues: IssueCollector, *, depth: int
) -> None:
    """Custom fields take any JSON value: finite numbers, 64-bit integers, text with no
    email address in it, and objects and arrays of those, not too deeply nested."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -spec.MAX_INTEGER <= value <= spec.MAX_INTEGER:
            issues.add(path, "invalid_type", "must fit in a 64-bit integer")
    elif isinstance(value, float):
        if not math.isfinite(value):
            issues.add(path, "invalid_type", f"must be a finite number, got {value!r}")
    elif isinstance(value, str):
        if not _encodable(value):
            issues.add(path, "invalid_type", "is not valid Unicode text")
        elif looks_like_email(value):
            issues.add(
                path,
                "raw_identifier",
                "contains what looks like an email address; hash it or leave it out",
            )
    elif not isinstance(value, list | Mapping):
        issues.add(
            path,
            "invalid_type",
            "must be a JSON value (string, number, boolean, object, array or null), "
            f"got {describe(value)}",
        )
    elif depth >= spec.MAX_CUSTOM_DEPTH:
        issues.add(
            path, "too_deep", f"must not nest more than {spec.MAX_CUSTOM_DEPTH} levels"
        )
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_custom_field(item, f"{path}[{index}]", issues, depth=depth + 1)
    else:
        for key, item in value.items():
            if not isinstance(key, str) or not _encodable(key):
                issues.add(
                    path,
                    "invalid_type",
                    f"object keys must be strings, got {describe(key)}",
                )
                continue
            _check_custom_field(item, join(path, key), issues, depth=depth + 1)
