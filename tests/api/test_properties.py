"""Arbitrary input never escapes as anything but a valid payload or EventValidationError."""

from __future__ import annotations

import json
import os
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_openai_capi.api import (
    build_event,
    build_user,
    encode_event,
    encode_request,
    hash_identifier,
    validate_event,
    validate_request,
)
from django_openai_capi.api.identity import IDENTITY_KEYS, Rejected, normalize
from django_openai_capi.api.spec import CONTENT_FIELDS, EVENT_FIELDS, EVENT_TYPES
from django_openai_capi.exceptions import EventValidationError

NOW = 1_790_000_000_000


def nested(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels):
        value = [value]
    return value


# What json.loads can hand over besides the obvious: lone surrogates ("\ud800"), integers
# too long to print, nesting deeper than the recursion limit.
hostile = (
    st.sampled_from(["\ud800", "a\udfffb", 2**63])
    # built by map: hypothesis cannot even print these as constants
    | st.sampled_from([5000, -5000]).map(lambda n: 10 ** abs(n) * (1 if n > 0 else -1))
    | st.just(1200).map(nested)
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | hostile
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
plausible_text = st.sampled_from(
    [
        "",
        " ",
        "a@example.com",
        "+1 (415) 555-2671",
        "US",
        "usd",
        "USD",
        "JPY",
        "https://x.example/p",
        "web",
        "mobile_app",
        "Zoë",
        "9" * 64,
        "sku_1",
        "custom",
        "contents",
    ]
) | st.text(max_size=12)
plausible = (
    st.none()
    | st.booleans()
    | st.integers(min_value=NOW - 10**10, max_value=NOW + 10**7)
    | st.integers(-3, 3)
    | plausible_text
    | st.floats(allow_nan=True)
)


def shaped(fields, values):
    return st.dictionaries(
        st.sampled_from(sorted(fields)) | st.text(max_size=6),
        values,
        max_size=len(fields),
    )


content_items = st.lists(
    shaped(
        CONTENT_FIELDS,
        plausible | st.dictionaries(plausible_text, plausible_text, max_size=2),
    ),
    max_size=3,
)
data_objects = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["contents", "customer_action", "plan_enrollment", "custom", "other"]
        ),
        "amount": plausible,
        "currency": plausible,
        "contents": content_items | json_like,
        "plan_id": plausible,
        "note": json_like,
    },
)
identities = st.dictionaries(
    st.sampled_from(IDENTITY_KEYS) | st.text(max_size=6),
    plausible | st.lists(plausible, max_size=5) | json_like,
    max_size=6,
)
events = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(EVENT_FIELDS, plausible),
        "type": st.sampled_from(sorted(EVENT_TYPES)) | plausible,
        "data": data_objects | json_like,
        "user": identities | json_like,
    },
)
VALID_EVENT = {
    "id": "order_1",
    "type": "order_created",
    "timestamp_ms": NOW,
    "action_source": "web",
    "source_url": "https://shop.example.com/checkout",
    "user": {
        "emails_sha256": [
            "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"
        ],
        "countries": ["US"],
    },
    "data": {
        "type": "contents",
        "amount": 2599,
        "currency": "USD",
        "contents": [{"id": "sku", "quantity": 1}],
    },
}


@st.composite
def near_valid_events(draw):
    """A valid event with one field replaced or removed: the validator's boundary."""
    event = json.loads(json.dumps(VALID_EVENT))
    container = draw(st.sampled_from(["event", "data", "item", "user"]))
    target = {
        "event": event,
        "data": event["data"],
        "item": event["data"]["contents"][0],
        "user": event["user"],
    }[container]
    key = draw(st.sampled_from(sorted(target)) | st.text(max_size=6))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(plausible | json_like)
    return event


PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(json_like | events | near_valid_events())
def test_validator_accepts_or_raises_its_own_error(value):
    try:
        validate_event(value, now=NOW)
    except EventValidationError as error:
        assert error.issues
    else:
        encode_event(value)


@PROPERTY_SETTINGS
@given(st.lists(events, max_size=3) | json_like, json_like)
def test_request_validator_accepts_or_raises_its_own_error(events_value, flag):
    try:
        validate_request({"events": events_value, "validate_only": flag}, now=NOW)
    except EventValidationError as error:
        assert error.issues
    else:
        encode_request(
            [encode_event(event) for event in events_value], validate_only=flag
        )


@PROPERTY_SETTINGS
@given(identities | json_like)
def test_identity_builder_returns_a_valid_user_or_raises_its_own_error(identity):
    try:
        user = build_user(identity)
    except EventValidationError as error:
        assert error.issues
        return
    # Whatever it built passes the validator as the user of a valid event.
    validate_event(
        {
            "id": "e",
            "type": "lead_created",
            "timestamp_ms": NOW,
            "data": {"type": "customer_action"},
            "user": user,
        },
        now=NOW,
    )


@PROPERTY_SETTINGS
@given(
    event_type=st.sampled_from(sorted(EVENT_TYPES)) | st.text(max_size=8),
    event_id=plausible,
    event_time=plausible,
    data=data_objects | json_like,
    user=identities | json_like,
    extra=st.fixed_dictionaries(
        {},
        optional={
            "custom_event_name": plausible,
            "action_source": plausible,
            "source_url": plausible,
            "oppref": plausible,
            "opt_out": plausible,
        },
    ),
)
def test_builder_returns_a_valid_event_or_raises_its_own_error(
    event_type, event_id, event_time, data, user, extra
):
    try:
        event = build_event(
            event_type,
            event_id=event_id,
            event_time=event_time,
            data=data,
            user=user,
            now=NOW,
            **extra,
        )
    except EventValidationError as error:
        assert error.issues
        return
    validate_event(event, now=NOW)
    assert json.loads(encode_event(event)) == event


@given(
    st.sampled_from(["email", "phone", "external_id", "first_name", "last_name"]),
    st.text(),
)
def test_hashing_is_idempotent_and_lowercase_hex(kind, value):
    try:
        digest = hash_identifier(kind, value)
    except Rejected:
        return
    assert len(digest) == 64 and set(digest) <= set(string.hexdigits.lower())
    assert hash_identifier(kind, digest) == digest


@given(st.text())
def test_normalised_names_hold_no_whitespace_ascii_punctuation_or_capitals(value):
    try:
        name = normalize("first_name", value)
    except Rejected:
        return
    assert name and not any(c.isspace() or c in string.punctuation for c in name)
    assert name == name.lower()
