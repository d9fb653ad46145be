"""Identity values the database cannot store never reach it, and never break the save.

PostgreSQL text cannot hold NUL, a lone surrogate is not UTF-8 at all, and a varchar
refuses what is longer than its column: any of them, let through, raised a ``DataError``
or ``UnicodeEncodeError`` out of the host's ``save()`` and aborted its transaction. Each
is refused by name instead, and the conversion recorded as failed under a rendering of
the value that can be stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from django_openai_capi import ModelConversion, track
from django_openai_capi.exceptions import CapiConfigurationError, ConversionError
from django_openai_capi.maintenance.backfill import backfill
from django_openai_capi.models import ConversionEvent, ErrorKind
from django_openai_capi.tracking.building import build_pending
from django_openai_capi.tracking.registry import ConversionRegistry
from tests.conftest import Swap, UseConsent
from tests.testapp.models import Note, Order

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status

# (what a hook returns, what the failed row stores, what the error says about it)
UNSTORABLE_TEXT = [
    pytest.param("ord\x00er", "ord\\x00er", "a NUL character", id="nul"),
    pytest.param("evt\ud800", "evt\\ud800", "a lone surrogate", id="lone-surrogate"),
]


def returning(**hooks: object) -> type[ModelConversion[Order]]:
    """A conversion of Order whose named hooks return the given values."""
    namespace: dict[str, Any] = {"event_type": "order_created"}
    for hook, value in hooks.items():
        namespace[hook] = lambda self, obj, value=value: value
    return type("Odd", (ModelConversion,), namespace)


def the_event() -> ConversionEvent:
    return ConversionEvent.objects.get()


# Model saves.


@pytest.mark.parametrize("hook", ["get_event_id", "get_pixel_id"])
@pytest.mark.parametrize(("value", "stored", "problem"), UNSTORABLE_TEXT)
def test_with_raise_errors_an_unstorable_identity_is_refused_naming_hook_and_field(
    swap_conversion: Swap, hook: str, value: str, stored: str, problem: str
) -> None:
    swap_conversion(Order, returning(**{hook: value}))
    field = hook.removeprefix("get_")
    with pytest.raises(ConversionError) as caught:
        Order.objects.create(number="A-1")
    message = str(caught.value)
    assert f"{field} from Odd.{hook}() contains {problem}" in message
    assert stored in message  # where it is, escaped
    assert not ConversionEvent.objects.exists()


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(("value", "stored", "problem"), UNSTORABLE_TEXT)
def test_an_unstorable_event_id_from_a_hook_never_breaks_the_hosts_transaction(
    swap_conversion: Swap, value: str, stored: str, problem: str
) -> None:
    swap_conversion(Order, returning(get_event_id=value))
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
        # An aborted PostgreSQL transaction would refuse this query.
        assert Order.objects.filter(pk=order.pk).exists()
        Note.objects.create(text="written after the order, in the same transaction")
    assert Order.objects.filter(pk=order.pk).exists()
    event = the_event()
    assert (event.status, event.last_error_kind) == (Status.FAILED, ErrorKind.BUILD)
    assert event.event_id == f"testapp.order:{order.pk}"
    assert f"event_id from Odd.get_event_id() contains {problem}" in event.last_error
    assert f'not the unusable event id "{stored}"' in event.last_error


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(("value", "stored", "problem"), UNSTORABLE_TEXT)
def test_an_unstorable_pixel_id_from_a_hook_is_recorded_failed_under_its_rendering(
    swap_conversion: Swap, value: str, stored: str, problem: str
) -> None:
    swap_conversion(Order, returning(get_pixel_id=value))
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    event = the_event()
    assert (event.status, event.pixel_id) == (Status.FAILED, stored)
    assert event.event_id == f"testapp.order:{order.pk}"
    assert f"pixel_id from Odd.get_pixel_id() contains {problem}" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_an_over_long_event_id_is_recorded_failed_under_the_fallback_id(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, returning(get_event_id="e" * 300))
    order = Order.objects.create(number="A-1")
    event = the_event()
    assert (event.status, event.event_id) == (
        Status.FAILED,
        f"testapp.order:{order.pk}",
    )
    assert (
        "event_id from Odd.get_event_id() is 300 characters long, more than the 255 that fit"
        in event.last_error
    )
    assert f'not the unusable event id "{"e" * 255}…"' in event.last_error


def ids_by_number(ids: dict[str, str]) -> type[ModelConversion[Order]]:
    """A conversion of Order whose event id is looked up by the order's number."""
    namespace: dict[str, Any] = {
        "event_type": "order_created",
        "get_event_id": lambda self, obj: ids[obj.number],
    }
    return type("IdPerOrder", (ModelConversion,), namespace)


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(
    "ids",
    [
        pytest.param({"A-1": "x" * 300 + "1", "A-2": "x" * 300 + "2"}, id="cut-alike"),
        # The first is refused, and its escaped rendering is the second, a real id.
        pytest.param({"A-1": "evt\x00", "A-2": "evt\\x00"}, id="escaped-alike"),
    ],
)
def test_two_orders_whose_refused_ids_would_be_stored_alike_get_two_failed_rows(
    swap_conversion: Swap, ids: dict[str, str]
) -> None:
    swap_conversion(Order, ids_by_number(ids))
    with transaction.atomic():
        first = Order.objects.create(number="A-1")
        second = Order.objects.create(number="A-2")
    labels = set(ConversionEvent.objects.values_list("source_label", flat=True))
    assert labels == {f"testapp.Order:{first.pk}", f"testapp.Order:{second.pk}"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(("value", "stored", "problem"), UNSTORABLE_TEXT)
def test_in_autocommit_the_order_and_its_failed_event_are_both_kept(
    swap_conversion: Swap, value: str, stored: str, problem: str
) -> None:
    swap_conversion(Order, returning(get_event_id=value))
    order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    event = the_event()
    assert (event.status, event.event_id) == (
        Status.FAILED,
        f"testapp.order:{order.pk}",
    )


@pytest.mark.usefixtures("record_failures")
def test_a_failed_rows_fallback_pixel_is_rendered_storably_too(
    swap_conversion: Swap, settings: Any
) -> None:
    # should_track raises before any hook names a pixel: the row falls back to the
    # setting, which here is itself unstorable.
    settings.OPENAI_CAPI_PIXEL_ID = "pix\x00el"
    swap_conversion(Order, Explodes)
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    event = the_event()
    assert (event.status, event.pixel_id) == (Status.FAILED, "pix\\x00el")


class Explodes(ModelConversion[Order]):
    event_type = "order_created"

    def should_track(self, obj: Order, created: bool) -> bool:
        raise ValueError("cannot read the order's flag \x00\ud800")


@pytest.mark.usefixtures("record_failures")
def test_an_error_quoting_unstorable_text_is_stored_escaped(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, Explodes)
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    assert the_event().last_error.endswith(
        "ValueError: cannot read the order's flag \\x00\\ud800"
    )


class DataExplodes(ModelConversion[Order]):
    event_type = "order_created"

    def get_data(self, obj: Order) -> dict[str, object]:
        raise ValueError("no price for \x00\ud800")


@pytest.mark.usefixtures("record_failures")
def test_the_build_stores_an_error_quoting_unstorable_text_escaped(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, DataExplodes)
    Order.objects.create(number="A-1")
    report = build_pending()
    assert report.failed == 1
    event = the_event()
    assert event.status == Status.FAILED
    assert event.last_error.endswith("raised ValueError: no price for \\x00\\ud800")


@pytest.mark.usefixtures("record_failures")
def test_a_backfill_records_an_unstorable_identity_as_a_failure_it_counts(
    swap_conversion: Swap,
) -> None:
    class Backfilled(ModelConversion[Order]):
        event_type = "order_created"

        def get_backfill_queryset(self, since: Any, until: Any) -> Any:
            return self.get_queryset()

        def get_event_id(self, obj: Order) -> str:
            return f"order\x00{obj.pk}"

    order = Order.objects.create(number="A-1", is_paid=False)  # testapp: no event
    swap_conversion(Order, Backfilled)
    report = backfill(since=timezone.now() - timedelta(days=1), models=[Order])
    (result,) = report.models
    assert (result.problem, result.failed, result.recorded) == (None, 1, 0)
    assert "contains a NUL character" in result.errors[0]
    assert the_event().event_id == f"testapp.order:{order.pk}"


# track().


@pytest.mark.parametrize(
    ("arguments", "source"),
    [
        ({"event_id": "l3\x00"}, "event_id from track(event_id=...) contains a NUL"),
        (
            {"pixel_id": "p\udc80"},
            "pixel_id from track(pixel_id=...) contains a lone surrogate",
        ),
        (
            {"source_label": "x" * 300},
            "source_label from track(source_label=...) is 300 characters long, more than the 255 that fit",
        ),
        (
            {"source_label": 42},
            "source_label from track(source_label=...) is of type int, not a string",
        ),
    ],
)
def test_with_raise_errors_track_refuses_an_unstorable_argument_by_name(
    arguments: dict[str, Any], source: str
) -> None:
    call: dict[str, Any] = {"event_id": "l-1", **arguments}
    with pytest.raises(ConversionError, match="^" + re.escape(source)):
        track("lead_created", **call)
    assert not ConversionEvent.objects.exists()


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(
    ("arguments", "field", "stored"),
    [
        ({"pixel_id": "p\udc80"}, "pixel_id", "p\\udc80"),
        ({"source_label": "x" * 300}, "source_label", "x" * 255),
        ({"source_label": "lbl\x00"}, "source_label", "lbl\\x00"),
    ],
)
def test_track_records_an_unstorable_argument_as_failed_under_its_rendering(
    arguments: dict[str, Any], field: str, stored: str
) -> None:
    call: dict[str, Any] = {"event_id": "l-1", **arguments}
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
        assert track("lead_created", **call) is True
        assert Order.objects.filter(pk=order.pk).exists()
    event = ConversionEvent.objects.get(event_type="lead_created")
    assert event.status == Status.FAILED
    assert getattr(event, field) == stored
    assert f"{field} from track({field}=...)" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_consent_is_asked_with_the_identity_the_row_stores(
    use_consent: UseConsent,
) -> None:
    calls = use_consent("granted")
    track("lead_created", event_id="l3\x00", source_label="form\ud800")
    ((_request, asked),) = calls
    assert asked.event_id.startswith("invalid-id:")
    assert asked.source_label == "form\\ud800"
    event = the_event()
    assert (event.event_id, event.source_label) == (asked.event_id, "form\\ud800")


@pytest.mark.usefixtures("record_failures")
def test_track_records_a_refused_event_id_under_a_fresh_id_and_quotes_it_in_the_error() -> (
    None
):
    track("lead_created", event_id="l3\x00")
    event = the_event()
    assert event.event_id.startswith("invalid-id:")
    assert 'not the unusable event id "l3\\x00"' in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_two_track_calls_whose_refused_ids_differ_after_the_cut_get_two_failed_rows() -> (
    None
):
    assert track("lead_created", event_id="x" * 300 + "1") is True
    assert track("lead_created", event_id="x" * 300 + "2") is True
    assert ConversionEvent.objects.filter(status=Status.FAILED).count() == 2


# The pixel id's own rules: those of OPENAI_CAPI_PIXEL_ID.


@pytest.mark.parametrize("pixel", ["pix el", " pixel", "pixel\n", "pix\tel"])
def test_a_pixel_id_with_whitespace_from_a_hook_is_refused_like_the_setting(
    swap_conversion: Swap, pixel: str
) -> None:
    swap_conversion(Order, returning(get_pixel_id=pixel))
    with pytest.raises(ConversionError, match="pixel_id from Odd.get_pixel_id()"):
        Order.objects.create(number="A-1")


def test_a_pixel_id_with_whitespace_in_track_is_refused_like_the_setting() -> None:
    with pytest.raises(
        ConversionError,
        match='pixel_id from track\\(pixel_id=...\\) contains whitespace \\("pix el"\\);',
    ):
        track("lead_created", event_id="l-1", pixel_id="pix el")


def test_a_pixel_id_that_looks_like_an_api_key_is_refused_like_the_setting() -> None:
    with pytest.raises(ConversionError, match="looks like an API key"):
        track("lead_created", event_id="l-1", pixel_id="sk-proj-" + "x" * 40)


@pytest.mark.usefixtures("record_failures")
def test_a_failed_row_never_stores_a_key_given_as_its_pixel() -> None:
    key = "sk-proj-" + "x" * 40
    track("lead_created", event_id="l-1", pixel_id=key)
    event = the_event()
    assert event.status == Status.FAILED
    assert key not in event.pixel_id and key not in event.last_error


@pytest.mark.parametrize("pixel", ["pix el", "pix\x00el"])
def test_a_pixel_id_attribute_with_whitespace_or_nul_fails_at_registration(
    pixel: str,
) -> None:
    class Elsewhere(ModelConversion[Note]):
        event_type = "lead_created"
        pixel_id = pixel

    with pytest.raises(CapiConfigurationError, match="Elsewhere.pixel_id"):
        ConversionRegistry().register(Note, Elsewhere)


def test_an_error_names_the_pixel_id_attribute_it_came_from(
    swap_conversion: Swap,
) -> None:
    class Routed(ModelConversion[Order]):
        event_type = "order_created"
        pixel_id = "px-2"

    conversion = swap_conversion(Order, Routed)
    type(conversion).pixel_id = "px 2"  # changed after its registration was checked
    with pytest.raises(ConversionError) as caught:
        Order.objects.create(number="A-1")
    assert str(caught.value).startswith(
        'pixel_id from Routed.pixel_id contains whitespace ("px 2");'
    )


def test_an_event_type_changed_after_registration_is_refused_by_name(
    swap_conversion: Swap,
) -> None:
    conversion = swap_conversion(Order, returning())
    type(conversion).event_type = "purchase"
    with pytest.raises(
        ConversionError,
        match=re.escape(
            "event_type from Odd.event_type is not one of the API's event types"
        ),
    ):
        Order.objects.create(number="A-1")


# The API key in a refused identity value: never quoted, not even in part.

KEY = "sk-proj-Qv7Lm2Xc9Rt4Wb8Nz1Hk5Jp3Sd6Fg0AyE2uT"
#: As much of the key as a shortened quote of it would show.
KEY_START = KEY[:16]

# A value that is refused, and quoted by the error that refuses it, with the key in it.
WITH_THE_KEY = [
    pytest.param(f"id-{KEY}\x00", id="nul"),
    pytest.param(f"id-{KEY}\ud800", id="lone-surrogate"),
    pytest.param(f"id-{KEY}" + "x" * 300, id="too-long"),
]


def everything_stored() -> str:
    return repr(list(ConversionEvent.objects.values()))


@pytest.fixture
def key(settings: Any) -> str:
    settings.OPENAI_CAPI_API_KEY = KEY
    return KEY


@pytest.mark.usefixtures("key", "record_failures")
@pytest.mark.parametrize("value", WITH_THE_KEY)
@pytest.mark.parametrize("field", ["event_id", "pixel_id", "source_label"])
def test_a_refused_track_argument_never_shows_the_key_in_the_log_or_the_row(
    caplog: pytest.LogCaptureFixture, field: str, value: str
) -> None:
    call: dict[str, Any] = {"event_id": "l-1", field: value}
    track("lead_created", **call)
    event = the_event()
    assert event.status == Status.FAILED
    assert f"{field} from track({field}=...)" in event.last_error
    assert KEY_START not in everything_stored()
    assert KEY_START not in caplog.text


@pytest.mark.usefixtures("key")
@pytest.mark.parametrize("value", WITH_THE_KEY)
@pytest.mark.parametrize("field", ["event_id", "pixel_id", "source_label"])
def test_with_raise_errors_a_refused_track_argument_never_shows_the_key(
    field: str, value: str
) -> None:
    call: dict[str, Any] = {"event_id": "l-1", field: value}
    with pytest.raises(ConversionError) as caught:
        track("lead_created", **call)
    assert str(caught.value).startswith(f"{field} from track({field}=...)")
    assert KEY_START not in str(caught.value)


@pytest.mark.usefixtures("key", "record_failures")
@pytest.mark.parametrize("value", WITH_THE_KEY)
@pytest.mark.parametrize("hook", ["get_event_id", "get_pixel_id"])
def test_a_refused_hook_value_never_shows_the_key_in_the_log_or_the_row(
    swap_conversion: Swap, caplog: pytest.LogCaptureFixture, hook: str, value: str
) -> None:
    swap_conversion(Order, returning(**{hook: value}))
    Order.objects.create(number="A-1")
    event = the_event()
    assert event.status == Status.FAILED
    assert f"from Odd.{hook}()" in event.last_error
    assert KEY_START not in everything_stored()
    assert KEY_START not in caplog.text


@pytest.mark.usefixtures("key")
@pytest.mark.parametrize("value", WITH_THE_KEY)
@pytest.mark.parametrize("hook", ["get_event_id", "get_pixel_id"])
def test_with_raise_errors_a_refused_hook_value_never_shows_the_key(
    swap_conversion: Swap, hook: str, value: str
) -> None:
    swap_conversion(Order, returning(**{hook: value}))
    with pytest.raises(ConversionError) as caught:
        Order.objects.create(number="A-1")
    assert f"from Odd.{hook}()" in str(caught.value)
    assert KEY_START not in str(caught.value)


# Event times: converted to UTC, and sent as Unix milliseconds.


class Unreadable(tzinfo):
    """A time zone whose offset cannot be read."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset for this zone")

    def dst(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset for this zone")

    def tzname(self, dt: datetime | None) -> str:
        raise RuntimeError("no name for this zone")


class Text(str):
    """A string whose own methods raise."""

    def isascii(self) -> bool:
        raise RuntimeError("isascii() of a hostile string")


# (what get_event_time returns, what the error says about it)
UNUSABLE_TIMES = [
    pytest.param(
        datetime(1, 1, 1, 1, tzinfo=dt_timezone(timedelta(hours=5))),
        "cannot be converted to UTC (OverflowError: date value out of range)",
        id="year-1-east-of-utc",
    ),
    pytest.param(
        datetime(9999, 12, 31, 23, tzinfo=dt_timezone(timedelta(hours=-5))),
        "cannot be converted to UTC (OverflowError: date value out of range)",
        id="year-9999-west-of-utc",
    ),
    pytest.param(
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        "is before 1970-01-01 UTC (1969-12-31 23:59:59 UTC); the API takes Unix "
        + "milliseconds",
        id="before-1970",
    ),
    pytest.param(
        datetime(1970, 1, 1, 4, tzinfo=dt_timezone(timedelta(hours=5))),
        "is before 1970-01-01 UTC (1969-12-31 23:00:00 UTC)",
        id="before-1970-in-utc",
    ),
    pytest.param(
        datetime(2026, 11, 20, tzinfo=Unreadable()),
        "cannot be converted to UTC (RuntimeError: no offset for this zone)",
        id="tzinfo-raises",
    ),
]


@pytest.mark.parametrize(("when", "problem"), UNUSABLE_TIMES)
def test_with_raise_errors_an_unusable_event_time_is_refused_naming_hook_and_field(
    swap_conversion: Swap, when: datetime, problem: str
) -> None:
    swap_conversion(Order, returning(get_event_time=when))
    with pytest.raises(ConversionError) as caught:
        Order.objects.create(number="A-1")
    assert str(caught.value).startswith(
        f"event_time from Odd.get_event_time() {problem}"
    )
    assert not ConversionEvent.objects.exists()


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(("when", "problem"), UNUSABLE_TIMES)
def test_an_unusable_event_time_from_a_hook_is_recorded_failed_at_the_time_of_saving(
    swap_conversion: Swap, when: datetime, problem: str
) -> None:
    swap_conversion(Order, returning(get_event_time=when))
    before = timezone.now()
    with transaction.atomic():
        order = Order.objects.create(number="A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    event = the_event()  # read back: a year-1 time would not be readable
    assert event.status == Status.FAILED
    assert event.event_time >= before
    assert f"event_time from Odd.get_event_time() {problem}" in event.last_error


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(("when", "problem"), UNUSABLE_TIMES)
def test_track_records_an_unusable_event_time_as_failed(
    when: datetime, problem: str
) -> None:
    assert track("lead_created", event_id="l-1", event_time=when) is True
    event = the_event()
    assert (event.status, event.event_id) == (Status.FAILED, "l-1")
    assert f"event_time from track(event_time=...) {problem}" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_a_value_whose_own_methods_raise_is_refused_not_raised() -> None:
    assert track("lead_created", event_id=Text("l-1")) is True
    event = the_event()
    assert event.status == Status.FAILED
    assert event.event_id.startswith("invalid-id:")
    assert (
        "event_id from track(event_id=...) could not be checked "
        + "(RuntimeError: isascii() of a hostile string)"
    ) in event.last_error


def test_with_raise_errors_a_value_whose_own_methods_raise_is_refused_by_name() -> None:
    with pytest.raises(ConversionError, match="^event_id from track\\(event_id=...\\)"):
        track("lead_created", event_id=Text("l-1"))


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(timedelta(hours=23, minutes=59), id="+23:59"),
        pytest.param(-timedelta(hours=23, minutes=59), id="-23:59"),
        pytest.param(timedelta(hours=16), id="+16:00"),
        pytest.param(timedelta(seconds=30), id="+00:00:30"),
        pytest.param(timedelta(microseconds=1), id="+1us"),
    ],
)
def test_an_event_time_in_any_zone_a_tzinfo_can_have_is_stored_as_the_same_moment(
    swap_conversion: Swap, offset: timedelta
) -> None:
    # PostgreSQL takes no offset of 16 hours or more, nor one with microseconds: the
    # INSERT failed, and the host's transaction with it.
    when = (timezone.now() - timedelta(hours=1)).astimezone(dt_timezone(offset))
    swap_conversion(Order, returning(get_event_time=when))
    with transaction.atomic():
        Order.objects.create(number="A-1")
    track("lead_created", event_id="l-1", event_time=when)
    assert [event.event_time for event in ConversionEvent.objects.all()] == [when] * 2
