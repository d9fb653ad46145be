"""The outbox row and its compiled INSERT: what the ORM would write, written faster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.insert import insert_ignoring_conflict, new_event
from django_openai_capi.tracking.recording import _pixel_id_problem

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def identity(**extra: object) -> dict[str, object]:
    return {
        "pixel_id": "px",
        "event_type": "order_created",
        "event_id": "shop.order:1",
        "event_time": WHEN,
        "expires_at": WHEN + timedelta(days=7),
        "source_label": "shop.Order:1",
        **extra,
    }


def columns(event: ConversionEvent) -> dict[str, object]:
    return {
        field.attname: getattr(event, field.attname)
        for field in ConversionEvent._meta.concrete_fields
    }


def test_a_new_event_is_the_one_the_model_makes_from_keywords() -> None:
    made = columns(new_event(**identity(context='{"oppref":"x"}')))
    expected = columns(ConversionEvent(**identity(context='{"oppref":"x"}')))
    # The defaults of "now" are an instant apart; everything else is the same.
    for name in ("next_attempt_at", "created_at"):
        assert abs(made.pop(name) - expected.pop(name)) < timedelta(seconds=5)  # type: ignore[operator]
    assert made == expected


def test_the_columns_defaulting_to_now_hold_one_instant() -> None:
    event = new_event(**identity())
    assert event.next_attempt_at == event.created_at


def test_a_field_the_model_does_not_have_is_refused() -> None:
    with pytest.raises(TypeError, match="no field colour, size"):
        new_event(**identity(size=1, colour="red"))


def test_the_row_written_reads_back_as_the_event() -> None:
    event = new_event(**identity(status=ConversionEvent.Status.FAILED, attempts=2))
    assert insert_ignoring_conflict(event, using="default")

    stored = ConversionEvent.objects.get()
    written = columns(event)
    del written["id"], written["updated_at"]  # the row's id, and its time of writing
    read = columns(stored)
    del read["id"], read["updated_at"]
    assert read == written
    assert stored.updated_at >= event.created_at


def test_a_second_row_with_the_same_identity_is_not_written() -> None:
    assert insert_ignoring_conflict(new_event(**identity()), using="default")
    assert not insert_ignoring_conflict(new_event(**identity()), using="default")
    assert ConversionEvent.objects.count() == 1


def test_a_time_in_another_zone_is_written_as_the_same_instant() -> None:
    # Not UTC: the field's own conversion, as the ORM would do it.
    paris = timezone(timedelta(hours=1))
    event = new_event(**identity(event_time=WHEN.astimezone(paris)))
    insert_ignoring_conflict(event, using="default")
    assert ConversionEvent.objects.get().event_time == WHEN


def test_the_insert_runs_through_the_connection_as_every_query_does() -> None:
    # Query logging, assertNumQueries and execute wrappers see it, as they saw the ORM's.
    with CaptureQueriesContext(connection) as queries:
        insert_ignoring_conflict(new_event(**identity()), using="default")
    assert len(queries) == 1
    assert "django_openai_capi_conversionevent" in queries[0]["sql"]


def test_valid_pixel_ids_are_remembered_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_openai_capi.tracking import recording

    monkeypatch.setattr(recording, "_VALID_PIXEL_IDS", set())
    monkeypatch.setattr(recording, "_VALID_PIXEL_IDS_KEPT", 2)
    for pixel in ("p1", "p2", "p3", "p1"):
        assert _pixel_id_problem(pixel) is None
    assert {"p1", "p2"} == recording._VALID_PIXEL_IDS
    # A refused one is never kept, and is refused every time.
    assert _pixel_id_problem("has space") == 'contains whitespace ("has space")'
    assert _pixel_id_problem("has space") == 'contains whitespace ("has space")'
    assert "has space" not in recording._VALID_PIXEL_IDS
