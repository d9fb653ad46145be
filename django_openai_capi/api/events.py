"""Building an event, and the exact JSON that is sent.

``build_event`` turns what a host project knows (an event type, an id, a time, raw
identity, amounts as Django holds them) into the API's event object, normalised,
hashed, stripped of empty optional fields, its amounts in minor units, and validated.
``encode_event`` gives its canonical JSON, which is what the outbox stores and what a
batch request is assembled from, so a resend is byte-for-byte what was built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django_openai_capi.api import spec
from django_openai_capi.api.canonical import dumps
from django_openai_capi.api.identity import collect_user
from django_openai_capi.api.issues import IssueCollector
from django_openai_capi.api.money import settle_amounts
from django_openai_capi.api.validation import (
    check_built_event,
    check_integration_source,
    now_ms,
)
from django_openai_capi.api.values import MAPPING, plain

JSONObject = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def build_event(
    event_type: str,
    *,
    event_id: str,
    event_time: datetime | int | None = None,
    data: Mapping[str, object] | None = None,
    user: Mapping[str, object] | None = None,
    custom_event_name: str | None = None,
    action_source: str | None = None,
    source_url: str | None = None,
    oppref: str | None = None,
    opt_out: bool | None = None,
    now: int | None = None,
) -> JSONObject:
    """The API's event object for one conversion, validated.

    - ``event_time`` is a timezone-aware ``datetime`` or Unix milliseconds; now if omitted.
    - ``event_type`` is one of the API's event types, as a string or an
      :class:`~django_openai_capi.api.spec.EventType`.
    - ``data`` is the ``data`` object without ``type``, which the event type fixes.
      Its ``amount``, and each content item's, is a ``Decimal`` in major units of the
      currency (``Decimal("25.99")`` with ``"currency": "USD"`` is sent as ``2599``), a
      py-moneyed or django-money ``Money`` (whose currency fills or must agree with
      ``currency``), or an ``int`` already in the currency's minor unit; a float is
      refused. See :func:`~django_openai_capi.api.money.settle_amounts`.
    - ``user`` is raw identity (``email``, ``phone``, ``external_id``, ...), normalised and
      hashed here; see :func:`~django_openai_capi.api.identity.build_user`.
    - ``now`` (Unix milliseconds) fixes the clock for the 7-day window check.

    Raises :class:`EventValidationError` listing every problem of the event.
    """
    if isinstance(event_type, str):
        # An EventType is sent, stored and named in errors as its plain string.
        event_type = plain(event_type)
    issues = IssueCollector()
    moment = now_ms() if now is None else now
    event = strip_empty(
        {
            "id": event_id,
            "type": event_type,
            "timestamp_ms": _timestamp_ms(event_time, moment, issues),
            "custom_event_name": custom_event_name,
            "action_source": action_source,
            "source_url": source_url,
            "oppref": oppref,
            # false is the API's default: sending it would only add bytes to every event.
            "opt_out": None if opt_out is False else opt_out,
            "user": collect_user(user, "user", issues),
            "data": _typed_data(event_type, data, issues),
        }
    )
    # On the copies strip_empty made, so that the host's own dicts are left as given.
    settle_amounts(event.get("data"), issues)
    check_built_event(event, issues, now=moment)
    issues.raise_if_any()
    return event


def _timestamp_ms(event_time: object, now: int, issues: IssueCollector) -> object:
    if event_time is None:
        return now
    if isinstance(event_time, datetime):
        try:
            offset = event_time.utcoffset()
        except (
            TypeError,
            ValueError,
        ):  # a tzinfo whose utcoffset is not a valid offset
            offset = None
        if offset is None:
            issues.add(
                "timestamp_ms",
                "naive_datetime",
                "event_time must be timezone-aware (USE_TZ, or tzinfo=UTC)",
            )
            return now  # the event is refused anyway; no second issue for the field
        # Integer arithmetic: float seconds times 1000 can land a millisecond short.
        return (event_time - _EPOCH) // _MILLISECOND
    # An int is taken as milliseconds; anything else is reported by the validator.
    return event_time


def _typed_data(event_type: object, data: object, issues: IssueCollector) -> object:
    """*data* with the ``type`` its event type fixes."""
    # Typed callers pass a mapping; untyped ones may pass anything, and the validator
    # reports it with its path instead of this function failing on it.
    if data is None:
        data = {}
    if not isinstance(data, MAPPING):
        return data
    expected = (
        spec.EVENT_DATA_TYPES.get(event_type) if isinstance(event_type, str) else None
    )
    given_type = data.get("type")
    if given_type is not None and given_type != expected:
        issues.add(
            "data.type",
            "invalid_event_data_type",
            f"is fixed by the event type ({expected!r}); leave it out",
        )
    return {**data, "type": expected}


def strip_empty(event: Mapping[Any, Any]) -> JSONObject:
    """Drop ``None``, ``""``, ``[]`` and ``{}`` fields from an event.

    From the event itself, its ``user``, its ``data`` and each content item. List items
    are kept (a ``None`` in ``contents`` is reported by the validator instead of
    vanishing), and so is everything inside a custom field or ``variant_dict``: those
    are the host's own values, sent as given.
    """
    stripped = _without_empty(event)
    user = stripped.get("user")
    if isinstance(user, MAPPING):
        _put_unless_empty(stripped, "user", _without_empty(user))
    data = stripped.get("data")
    if isinstance(data, MAPPING):
        data = _without_empty(data)
        contents = data.get("contents")
        if isinstance(contents, list):
            items = [
                _without_empty(item) if isinstance(item, MAPPING) else item
                for item in contents
            ]
            # A list whose own iteration yields nothing is as empty as [].
            if items:
                data["contents"] = items
            else:
                del data["contents"]
        _put_unless_empty(stripped, "data", data)
    return stripped


# What counts as empty besides None: these types with a length of 0. A tuple, not a
# union: isinstance takes a tuple faster, and this runs for every value of an event.
_SIZED = (str, list, dict)


def _without_empty(mapping: Mapping[Any, Any]) -> JSONObject:
    # A copy first, then the few empty fields deleted: faster than building the dict
    # value by value, and this runs for the event, its data and every content item.
    # The copy is judged, not *mapping*: a Mapping's own items() may disagree with the
    # keys() and __getitem__ that dict() copied (a key it alone yields would not be
    # there to delete).
    stripped = dict(mapping)
    empty = [
        key
        for key, value in stripped.items()
        if value is None or (isinstance(value, _SIZED) and len(value) == 0)
    ]
    for key in empty:
        del stripped[key]
    return stripped


def _put_unless_empty(event: JSONObject, key: str, value: JSONObject) -> None:
    # A user or data object left with nothing is dropped as an empty one would be.
    if value:
        event[key] = value
    else:
        del event[key]


def encode_event(event: Mapping[str, object]) -> str:
    """The canonical JSON of an event: sorted keys, no spaces, UTF-8 text, no NaN."""
    return dumps(event)


def encode_request(
    encoded_events: Sequence[str],
    *,
    validate_only: bool = False,
    integration_source: str | None = None,
) -> bytes:
    """The request body for a batch, assembled from already-encoded events.

    Events are stored as their canonical JSON; splicing the stored text into the body
    avoids parsing and re-serialising up to 1,000 events per request.
    """
    if isinstance(encoded_events, str) or not all(
        isinstance(event, str) for event in encoded_events
    ):
        # A lone string is a Sequence[str] too, and would be spliced in character by
        # character without a word.
        raise TypeError("encoded_events must be a list of encode_event() results")
    if not 1 <= len(encoded_events) <= spec.MAX_EVENTS_PER_REQUEST:
        raise ValueError(
            f"a request carries 1 to {spec.MAX_EVENTS_PER_REQUEST} events, got {len(encoded_events)}"
        )
    parts = ['{"events":[', ",".join(encoded_events), "]"]
    if integration_source is not None:
        issues = IssueCollector()
        check_integration_source(integration_source, "integration_source", issues)
        issues.raise_if_any()
        parts.append(
            ',"integration_source":' + json.dumps(integration_source.strip().lower())
        )
    parts.append(',"validate_only":' + ("true" if validate_only else "false") + "}")
    return "".join(parts).encode("utf-8")
