"""The local validator and the fake API agree, event by event, on what is valid.

The fake (``django_openai_capi.testing.rules``) is written from the API reference
without the app's validator (``django_openai_capi.api``); here both judge the same
random events: valid ones of every type, and valid ones broken in one field. What the
validator passes, the fake must accept: a payload the app stores as valid must never be
refused. What the fake refuses, the validator must refuse, naming the same field. The
validator is stricter on purpose where the API documentation is silent; each such rule
is listed in ``STRICTER`` with its reason, and any other disagreement fails.

Then random batches go through the whole path: built or stored, sent by delivery to
the fake, and each event ends as the two sides said it would.

``HYPOTHESIS_PROFILE=soak`` runs many more examples (by hand); CI runs a bounded number
(``HYPOTHESIS_EXAMPLES``, 150 by default; a fifth of that for the batches).
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from django_openai_capi.api import encode_event, validate_event
from django_openai_capi.api.spec import (
    ACTION_SOURCES,
    EVENT_DATA_TYPES,
    MAX_INTEGER,
    MOBILE_APP_EVENT_TYPES,
    STANDARD_EVENT_TYPES,
)
from django_openai_capi.delivery import send_pending
from django_openai_capi.exceptions import EventValidationError
from django_openai_capi.models import ACCEPTANCE_WINDOW, ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import with_payload

NOW = 1_790_000_000_000
DAY = 24 * 60 * 60 * 1000
PIXEL = "test-pixel"

settings.register_profile(
    "agreement",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "soak",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "agreement"))
#: A batch through delivery costs a database round and requests: fewer of them.
BATCHES = settings(PROFILE, max_examples=max(1, (PROFILE.max_examples or 0) // 5))

pytestmark = pytest.mark.soak

hex_digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
identifier = st.text(
    string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=30
)
words = st.text(
    string.ascii_letters + string.digits + " -_", min_size=1, max_size=20
).filter(lambda text: text.strip() == text and bool(text))
currencies = st.sampled_from(["USD", "EUR", "JPY", "GBP", "KWD"])
amounts = st.integers(min_value=0, max_value=10**9)
ip_addresses = st.sampled_from(["203.0.113.7", "2001:db8::1", "198.51.100.255"])

users = st.fixed_dictionaries(
    {},
    optional={
        "emails_sha256": st.lists(hex_digests, min_size=1, max_size=3),
        "phone_numbers_sha256": st.lists(hex_digests, min_size=1, max_size=3),
        "external_ids_sha256": st.lists(hex_digests, min_size=1, max_size=3),
        "first_names_sha256": st.lists(hex_digests, min_size=1, max_size=2),
        "countries": st.lists(
            st.sampled_from(["US", "FR", "JP"]), min_size=1, max_size=3
        ),
        "postal_codes": st.lists(
            st.sampled_from(["94107", "75001"]), min_size=1, max_size=2
        ),
        "ip_address": ip_addresses,
        "user_agent": st.just("Mozilla/5.0 (X11; Linux x86_64)"),
        "obref": identifier,
        "android_advertising_id": st.uuids().map(str),
    },
)


@st.composite
def content_items(draw: st.DrawFn, with_currency: bool) -> dict[str, Any]:
    item = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "id": identifier,
                "group_id": identifier,
                "name": words,
                "content_type": st.sampled_from(["product", "plan", "page"]),
                "quantity": st.integers(min_value=1, max_value=100),
                "variant_dict": st.dictionaries(words, words, max_size=2),
            },
        )
    )
    if draw(st.booleans()):
        item["amount"] = draw(amounts)
        if not with_currency or draw(st.booleans()):
            item["currency"] = draw(currencies)
    return item


@st.composite
def data_objects(draw: st.DrawFn, data_type: str) -> dict[str, Any]:
    data: dict[str, Any] = {"type": data_type}
    if draw(st.booleans()):
        data["amount"] = draw(amounts)
        data["currency"] = draw(currencies)
    if data_type != "customer_action" and draw(st.booleans()):
        data["contents"] = draw(
            st.lists(content_items("currency" in data), min_size=1, max_size=3)
        )
    if data_type in ("plan_enrollment", "custom") and draw(st.booleans()):
        data["plan_id"] = draw(identifier)
    if data_type == "custom":
        data.update(
            draw(
                st.dictionaries(
                    st.sampled_from(["coupon", "tier", "score", "flags"]),
                    words
                    | st.integers(-1000, 1000)
                    | st.booleans()
                    | st.lists(words, max_size=2),
                    max_size=3,
                )
            )
        )
    return data


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event as the API documents it, of any type, with any optional fields."""
    event_type = draw(st.sampled_from(sorted(EVENT_DATA_TYPES)))
    event: dict[str, Any] = {
        "id": draw(identifier),
        "type": event_type,
        "timestamp_ms": draw(
            st.integers(min_value=NOW - 7 * DAY + 60_000, max_value=NOW + 9 * 60_000)
        ),
        "data": draw(data_objects(EVENT_DATA_TYPES[event_type])),
    }
    if event_type == "custom":
        event["custom_event_name"] = draw(
            st.from_regex(
                r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}[A-Za-z0-9]", fullmatch=True
            ).filter(lambda name: name.lower() not in STANDARD_EVENT_TYPES)
        )
    if event_type in MOBILE_APP_EVENT_TYPES:
        event["action_source"] = "mobile_app"
    elif draw(st.booleans()):
        event["action_source"] = draw(st.sampled_from(sorted(ACTION_SOURCES)))
    if event.get("action_source") == "web" or draw(st.booleans()):
        event["source_url"] = "https://shop.example.com/" + draw(
            st.sampled_from(["", "checkout", "p/42?ref=ad", "thanks#top"])
        )
    if draw(st.booleans()):
        event["oppref"] = draw(identifier)
    if draw(st.booleans()):
        event["opt_out"] = draw(st.booleans())
    if draw(st.booleans()):
        event["user"] = draw(users)
    return event


#: Values that break a field in some way: wrong JSON type, empty, out of range, unknown.
bad_values = st.sampled_from(
    [
        None,
        "",
        " ",
        "not a url",
        "ftp://files.example.com/x",
        "a@example.com",
        "XYZ",
        "usd",
        "web",
        "custom",
        "lead_created",
        "B4C9A289323B21A01C3E940F150EB9B8C542587F1ABFD8F0E1CC1FFC5E475514",
        "999.1.1.1",
        -1,
        0,
        1.5,
        True,
        2**63,
        NOW - 8 * DAY,
        NOW + DAY,
        [],
        ["a@example.com"],
        [1],
        {},
        {"x": 1},
    ]
)
DELETE = object()


@st.composite
def broken_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one field replaced, removed, or added under an unknown name."""
    event = draw(valid_events())
    holders: list[dict[str, Any]] = [event, event["data"]]
    if isinstance(event.get("user"), dict):
        holders.append(event["user"])
    holders.extend(event["data"].get("contents", []))
    holder = draw(st.sampled_from(holders))
    key = draw(
        st.sampled_from(sorted(holder) or ["x"])
        | st.sampled_from(["event_id", "email_sha256", "price", "plan_id", "extra"])
    )
    value = draw(bad_values | st.just(DELETE))
    if value is DELETE:
        holder.pop(key, None)
    else:
        holder[key] = value
    return event


def local_problems(event: dict[str, Any]) -> dict[str, str]:
    """The validator's verdict: every problem's path and code."""
    try:
        validate_event(event, path="events[0]", now=NOW)
    except EventValidationError as error:
        return {issue.path: issue.code for issue in error.issues}
    return {}


def fake_problems(event: dict[str, Any]) -> dict[str, str]:
    """The fake's verdict on a request carrying the one event."""
    fake = FakeConversionsAPI(api_key="k", pixels=[PIXEL], clock=lambda: NOW / 1000)
    response = fake.handle(
        "POST",
        f"/v1/events?pid={PIXEL}",
        {"Authorization": "Bearer k"},
        json.dumps({"events": [event]}).encode(),
    )
    assert response is not None
    if response.status == 200:
        return {}
    error = response.json()["error"]
    details = error.get("errors") or [error]
    return {detail["param"]: detail["code"] for detail in details}


def covers(local_path: str, fake_path: str) -> bool:
    """Whether the two name the same field (one may be more precise: ``[0]``, a key)."""
    return (
        local_path == fake_path
        or local_path.startswith((fake_path + ".", fake_path + "["))
        or fake_path.startswith((local_path + ".", local_path + "["))
    )


PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
MISSING = object()


def value_at(event: dict[str, Any], path: str) -> object:
    """The value at an issue's path (``events[0].data.contents[1].amount``)."""
    value: object = {"events": [event]}
    for name, index in PATH_PART.findall("." + path):
        if isinstance(value, dict) and name:
            value = value.get(name, MISSING)
        elif isinstance(value, list) and index and int(index) < len(value):
            value = value[int(index)]
        else:
            return MISSING
    return value


def blank(value: object) -> bool:
    return isinstance(value, str) and not value.strip()


#: Where the validator refuses what the fake accepts, on purpose: (why, test). Each is
#: a point the reference (conversions-api.md) leaves open, or a personal-data rule of
#: the app's own, and the safe side is to refuse before a whole batch is at stake.
STRICTER: list[tuple[str, Callable[[str, str, object], bool]]] = [
    (
        "an explicit null: the API's handling is UNKNOWN (reference section 3); the "
        + "fake takes it as absent, the app never sends one (strip_empty)",
        lambda path, code, value: value is None,
    ),
    (
        "a blank string where the docs ask for a value (id, oppref, content strings, "
        + "plan_id, raw user values): limits UNKNOWN, and a blank one carries nothing",
        lambda path, code, value: blank(value),
    ),
    (
        "a quantity below 1: UNKNOWN (section 7); rudder-transformer refuses it too",
        lambda path, code, value: (
            code == "invalid_quantity" and type(value) is int and value < 1
        ),
    ),
    (
        "an integer beyond 64 bits (an amount, a custom field): no bound is documented "
        + "(section 8); JSON "
        + "readers on the other side may not hold it",
        lambda path, code, value: (
            code in ("invalid_amount", "invalid_type")
            and type(value) is int
            and abs(value) > MAX_INTEGER
        ),
    ),
    (
        "what looks like a raw email address in free text: the app's own rule against "
        + "sending personal data unhashed",
        lambda path, code, value: (
            code == "raw_identifier" and isinstance(value, str) and "@" in value
        ),
    ),
    (
        "a source_url that is not http(s) (other schemes: UNKNOWN, section 4)",
        lambda path, code, value: (
            code == "invalid_source_url"
            and isinstance(value, str)
            and "://" in value
            and not value.startswith(("http://", "https://"))
        ),
    ),
    (
        "a raw user value the API would skip rather than refuse (section 9: 'first "
        + "three valid values'): the app refuses it so that nothing is dropped silently",
        lambda path, code, value: (
            ".user." in path
            and code not in ("raw_identifier", "unknown_field")
            and isinstance(value, str)
        ),
    ),
]


def stricter_on_purpose(event: dict[str, Any], path: str, code: str) -> str | None:
    value = value_at(event, path)
    for why, test in STRICTER:
        if test(path, code, value):
            return why
    return None


def judge(event: dict[str, Any]) -> None:
    """Assert that the two verdicts agree, or differ only where the validator is stricter."""
    local = local_problems(event)
    remote = fake_problems(event)
    note(f"validator: {local}; fake: {remote}")
    if not local:
        assert not remote, "the validator passed an event the fake refuses"
        return
    for fake_path in remote:
        assert any(covers(path, fake_path) for path in local), (
            f"the fake refused {fake_path}, the validator named only {sorted(local)}"
        )
    if not remote:
        unexplained = {
            path: code
            for path, code in local.items()
            if stricter_on_purpose(event, path, code) is None
        }
        assert not unexplained, f"refused by the validator only: {unexplained}"


@PROFILE
@given(valid_events())
def test_every_valid_event_passes_both(event: dict[str, Any]) -> None:
    assert local_problems(event) == {}
    assert fake_problems(event) == {}


@PROFILE
@given(broken_events())
def test_the_validator_and_the_fake_agree_on_each_broken_event(
    event: dict[str, Any],
) -> None:
    judge(event)


#: One event for each rule of STRICTER, in the same order: where it is broken, and how.
STRICTER_EXAMPLES: list[tuple[tuple[str | int, ...], object]] = [
    (("opt_out",), None),
    (("oppref",), " "),
    (("data", "contents", 0, "quantity"), 0),
    (("data", "amount"), MAX_INTEGER + 1),
    (("data", "contents", 0, "name"), "jane@example.com"),
    (("source_url",), "ftp://files.example.com/x"),
    (("user", "countries"), ["usa"]),
]


@pytest.mark.parametrize(
    ("rule", "where", "value"),
    [(index, *example) for index, example in enumerate(STRICTER_EXAMPLES)],
    ids=[why.split(":")[0] for why, _ in STRICTER],
)
def test_where_the_validator_is_stricter_on_purpose(
    rule: int, where: tuple[str | int, ...], value: object
) -> None:
    assert len(STRICTER_EXAMPLES) == len(STRICTER)
    event: dict[str, Any] = {
        "id": "order-1",
        "type": "order_created",
        "timestamp_ms": NOW,
        "source_url": "https://shop.example.com/checkout",
        "user": {"countries": ["US"]},
        "data": {
            "type": "contents",
            "amount": 2599,
            "currency": "USD",
            "contents": [{"id": "sku-1", "name": "Mug", "quantity": 1}],
        },
    }
    holder: Any = event
    for step in where[:-1]:
        holder = holder[step]
    holder[where[-1]] = value

    local = local_problems(event)

    assert fake_problems(event) == {}
    assert len(local) == 1
    [(path, code)] = local.items()
    assert stricter_on_purpose(event, path, code) == STRICTER[rule][0]


@pytest.fixture(scope="module")
def served_fake() -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(
        api_key="agreement-key", pixels=[PIXEL], clock=lambda: NOW / 1000
    ) as fake:
        yield fake


@pytest.fixture
def delivery_to(served_fake: FakeConversionsAPI, settings: Any) -> FakeConversionsAPI:
    # Once per test, not per example: each assignment stacks an override.
    settings.OPENAI_CAPI_ENDPOINT = served_fake.url
    settings.OPENAI_CAPI_API_KEY = "agreement-key"
    return served_fake


def stored(index: int, event: dict[str, Any], expires: datetime) -> ConversionEvent:
    """An outbox row carrying *event* as it is, valid or not (an older version's
    payload, a hand-made one): delivery sends what is stored."""
    event_id = event.get("id")
    if isinstance(event_id, str) and event_id.strip():
        event["id"] = event_id = f"{index}-{event_id}"
    row = ConversionEvent(
        pixel_id=PIXEL,
        event_type=str(event.get("type"))[:32],
        event_id=f"row-{index}" if not isinstance(event_id, str) else event_id[:200],
        event_time=expires - ACCEPTANCE_WINDOW,
        expires_at=expires,
        source_label=f"agreement:{index}",
    )
    return with_payload(row, encode_event(event))


@BATCHES
@given(events=st.lists(valid_events() | broken_events(), min_size=1, max_size=25))
def test_random_batches_through_delivery_end_as_both_sides_said(
    events: list[dict[str, Any]], delivery_to: FakeConversionsAPI, db: None
) -> None:
    served_fake = delivery_to
    ConversionEvent.objects.all().delete()
    served_fake.reset()
    expires = timezone.now() + timedelta(days=6)
    rows = ConversionEvent.objects.bulk_create(
        stored(index, event, expires) for index, event in enumerate(events)
    )
    expected = {}
    for row, event in zip(rows, events, strict=True):
        remote = fake_problems(event)
        if not remote:
            expected[row.pk] = ConversionEvent.Status.SENT
        elif set(remote.values()) == {"event_timestamp_too_old"}:
            expected[row.pk] = ConversionEvent.Status.EXPIRED
        else:
            expected[row.pk] = ConversionEvent.Status.FAILED
        if not local_problems(event):
            # What the validator passes is always delivered.
            assert expected[row.pk] == ConversionEvent.Status.SENT

    report = send_pending()

    outcome = dict(ConversionEvent.objects.values_list("pk", "status"))
    assert outcome == expected
    sent = ConversionEvent.objects.filter(status=ConversionEvent.Status.SENT)
    assert sorted(served_fake.accepted_ids()) == sorted(
        sent.values_list("event_id", flat=True)
    )
    assert set(served_fake.receipts.values()) <= {1}
    for row in ConversionEvent.objects.exclude(status=ConversionEvent.Status.SENT):
        assert row.last_error.startswith("Refused by the API:")
        assert row.last_http_status in (400, 422)
    # The refused events cost a bounded number of extra requests (about one each).
    assert report.requests <= 1 + 2 * (len(events) - sent.count()) + 1
