"""The documented rules of the Conversions API, checked before anything is sent.

The API rejects a whole batch of up to 1,000 events for one bad event, so every rule it
documents is checked before sending, per event, and every problem is reported with the
field path the API itself would use (``events[3].data.contents[0].quantity``). This
module holds the request and the event's own fields; ``data_rules`` and ``user_rules``
the two nested objects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from django_openai_capi.api import spec
from django_openai_capi.api.canonical import dumps
from django_openai_capi.api.data_rules import check_data
from django_openai_capi.api.issues import IssueCollector, join
from django_openai_capi.api.user_rules import check_user
from django_openai_capi.api.values import (
    MAPPING,
    describe,
    encodable,
    given,
    is_text,
    looks_like_email,
    one_of,
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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
        if not one_of(key, spec.REQUEST_FIELDS):
            issues.add(
                join("", key),
                "unknown_field",
                f"is not a request field; use {', '.join(sorted(spec.REQUEST_FIELDS))}",
            )
    if "validate_only" in body and not isinstance(body["validate_only"], bool):
        issues.add(
            "validate_only",
            "invalid_type",
            f"must be true or false, got {given(body['validate_only'])}",
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
            f"got {given(value)}",
        )


def check_event(
    event: object, path: str, issues: IssueCollector, *, now: int | None = None
) -> None:
    if not isinstance(event, MAPPING):
        issues.add(
            path, "invalid_type", f"an event must be an object, got {describe(event)}"
        )
        return
    known = len(issues.issues)
    _check_event_fields(event, path, issues, now_ms() if now is None else now)
    if len(issues.issues) == known:
        _check_encodable(event, path, issues)


def check_built_event(
    event: Mapping[str, object], issues: IssueCollector, *, now: int
) -> None:
    """:func:`check_event` for an event ``build_event`` assembled, minus its repeats.

    Its keys are ``build_event``'s own; its ``user`` object comes from ``collect_user``,
    whose output passes ``check_user`` by construction; and its containers are dicts
    and lists that hold only what the rules let through, which JSON always encodes (the
    rules refuse, by their path, the mapping types it cannot), so ``encode_event``
    encodes it once, for the stored text. Property tests hold these promises: every
    built event passes :func:`check_event` and encodes.
    """
    _check_event_fields(event, "", issues, now, built=True)


def _check_encodable(
    event: Mapping[object, object], path: str, issues: IssueCollector
) -> None:
    # The rules cover what JSON can carry; this catches what they cannot foresee in an
    # arbitrary mapping (a key type json does not know, a cycle), so that a valid event
    # always encodes.
    try:
        dumps(event).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        issues.add(
            path, "not_json", f"cannot be encoded as JSON ({type(error).__name__})"
        )


def _check_event_fields(
    event: Mapping[Any, object],
    path: str,
    issues: IssueCollector,
    now: int,
    *,
    built: bool = False,
) -> None:
    if not built:
        for key in event:
            if not one_of(key, spec.EVENT_FIELDS):
                issues.add(
                    join(path, key),
                    "unknown_field",
                    f"is not an event field; use {', '.join(sorted(spec.EVENT_FIELDS))}",
                )

    if not is_text(event.get("id")):
        issues.add(
            join(path, "id"),
            "missing_id" if "id" not in event else "invalid_id",
            "must be a non-empty string",
        )

    event_type = event.get("type")
    if not one_of(event_type, spec.EVENT_TYPES):
        issues.add(
            join(path, "type"),
            "missing_type" if event_type is None else "invalid_type",
            f"must be one of {', '.join(sorted(spec.EVENT_TYPES))}, got {given(event_type)}",
        )
        event_type = None

    _check_timestamp(event.get("timestamp_ms"), path, issues, now)
    _check_custom_event_name(event, event_type, path, issues)
    action_source = _check_action_source(event, event_type, path, issues)
    _check_source_url(event, action_source, path, issues)

    if "oppref" in event and not is_text(event["oppref"]):
        issues.add(
            join(path, "oppref"),
            "invalid_oppref",
            f"must be a non-empty string, got {describe(event['oppref'])}",
        )
    if "opt_out" in event and not isinstance(event["opt_out"], bool):
        issues.add(
            join(path, "opt_out"),
            "invalid_type",
            f"must be true or false, got {given(event['opt_out'])}",
        )
    if "user" in event and not built:
        check_user(event["user"], join(path, "user"), issues)

    if "data" not in event:
        issues.add(join(path, "data"), "missing_data", "is required")
    else:
        check_data(event["data"], event_type, join(path, "data"), issues)


def _check_timestamp(
    value: object, event_path: str, issues: IssueCollector, now: int
) -> None:
    if value is None:
        code, message = "missing_timestamp", "is required: Unix time in milliseconds"
    elif isinstance(value, bool) or not isinstance(value, int):
        code = "invalid_type"
        message = (
            f"must be an integer of milliseconds since the epoch, got {given(value)}"
        )
    elif value < now - spec.MAX_EVENT_AGE_MS:
        code = "event_timestamp_too_old"
        message = f"must be within the last 7 days, got {given(value)}"
    elif value > now + spec.MAX_EVENT_SKEW_MS:
        code = "event_timestamp_in_future"
        message = f"must be no more than 10 minutes ahead, got {given(value)}"
    else:
        return
    issues.add(join(event_path, "timestamp_ms"), code, message)


def _check_custom_event_name(
    event: Mapping[object, object],
    event_type: object,
    path: str,
    issues: IssueCollector,
) -> None:
    name = event.get("custom_event_name")
    if event_type != "custom":
        # With an unknown type, whether a name is allowed cannot be said: stay quiet.
        if event_type is not None and "custom_event_name" in event:
            issues.add(
                join(path, "custom_event_name"),
                "custom_event_name_not_allowed",
                "is allowed only with type 'custom'",
            )
        return
    if name is None:
        issues.add(
            join(path, "custom_event_name"),
            "missing_custom_event_name",
            "is required when type is 'custom'",
        )
    elif not isinstance(name, str) or not spec.CUSTOM_EVENT_NAME_RE.fullmatch(name):
        issues.add(
            join(path, "custom_event_name"),
            "invalid_custom_event_name",
            "must be 1-64 letters, digits, '_' or '-', starting and ending with a letter or digit, "
            f"got {describe(name)}",
        )
    elif name.lower() in spec.STANDARD_EVENT_TYPES:
        issues.add(
            join(path, "custom_event_name"),
            "invalid_custom_event_name",
            f"must not be a standard event name; use type {name.lower()!r} instead",
        )


def _check_action_source(
    event: Mapping[object, object],
    event_type: object,
    path: str,
    issues: IssueCollector,
) -> object:
    source = event.get("action_source")
    if source is not None and not one_of(source, spec.ACTION_SOURCES):
        issues.add(
            join(path, "action_source"),
            "invalid_action_source",
            f"must be one of {', '.join(sorted(spec.ACTION_SOURCES))}, got {given(source)}",
        )
    elif one_of(event_type, spec.MOBILE_APP_EVENT_TYPES) and source != "mobile_app":
        issues.add(
            join(path, "action_source"),
            "invalid_action_source",
            f"must be 'mobile_app' for {event_type}, got {given(source)}",
        )
    return source


# What urlsplit silently drops (tabs, newlines) or keeps (spaces), and no URL holds:
# whitespace (\s is exactly str.isspace()) and the C0 control characters.
_SPACE_OR_C0: Final = re.compile(r"[\s\x00-\x1f]")


def _check_source_url(
    event: Mapping[object, object],
    action_source: object,
    path: str,
    issues: IssueCollector,
) -> None:
    url = event.get("source_url")
    if url is None:
        if action_source == "web":
            issues.add(
                join(path, "source_url"),
                "missing_source_url",
                "is required when action_source is 'web'",
            )
        return
    if not isinstance(url, str):
        issues.add(
            join(path, "source_url"),
            "invalid_type",
            f"must be a URL string, got {describe(url)}",
        )
        return
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    valid = valid and _SPACE_OR_C0.search(url) is None
    if not valid or not encodable(url):
        issues.add(
            join(path, "source_url"),
            "invalid_source_url",
            f"must be an http(s) URL with a host, got {describe(url)}",
        )
    # Only the query and fragment: paths such as /img/logo@2x.png are not addresses.
    elif (parts.query or parts.fragment) and (
        looks_like_email(unquote(parts.query))
        or looks_like_email(unquote(parts.fragment))
    ):
        issues.add(
            join(path, "source_url"),
            "raw_identifier",
            "contains what looks like an email address; remove personal data from the URL",
        )
