from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi import migrations
from django_openai_capi.models import (
    ACCEPTANCE_WINDOW,
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    EventPayload,
)


def test_rows_describe_themselves_for_the_admin_and_logs() -> None:
    event = ConversionEvent(
        event_type="order_created", event_id="shop.order:42", status="failed"
    )
    assert str(event) == "order_created shop.order:42 (failed)"
    batch = DeliveryBatch(size=1000, pixel_id="px", outcome="accepted")
    assert str(batch) == "1000 events to px (accepted)"


@pytest.mark.django_db
def test_the_schema_is_one_initial_migration_that_matches_the_models() -> None:
    # The app is unreleased: nobody has an older schema to upgrade from.
    names = sorted(
        path.stem for path in Path(migrations.__file__).parent.glob("[0-9]*.py")
    )
    assert names == ["0001_initial"]
    call_command("makemigrations", "django_openai_capi", "--check", "--dry-run")


JSON = '{"id":"e-1"}'


def identity(event_id: str = "e-1") -> dict[str, Any]:
    now = timezone.now()
    return {
        "pixel_id": "test-pixel",
        "event_type": "lead_created",
        "event_id": event_id,
        "event_time": now,
        "expires_at": now + ACCEPTANCE_WINDOW,
    }


def an_event(event_id: str = "e-1", **fields: Any) -> ConversionEvent:
    return ConversionEvent(**identity(event_id), **fields)


def test_a_payload_given_is_read_back_and_marks_the_event_built() -> None:
    event = an_event(payload=JSON)

    assert (event.payload, event.is_built) == (JSON, True)
    assert (an_event().payload, an_event().is_built) == (None, False)


@pytest.mark.django_db
def test_the_payload_is_stored_in_its_own_table_with_the_event() -> None:
    # The type: ignores: django-stubs' mypy plugin knows a model's fields only, while
    # Django's __init__ (and so create()) takes its properties too.
    created = ConversionEvent.objects.create(payload=JSON, **identity("created"))  # type: ignore[misc]
    saved = an_event("saved", payload=JSON)
    saved.save()
    unbuilt = ConversionEvent.objects.create(payload=None, **identity("unbuilt"))  # type: ignore[misc]

    assert dict(EventPayload.objects.values_list("event_id", "json")) == {
        created.pk: JSON,
        saved.pk: JSON,
    }
    for event in ConversionEvent.objects.all():
        assert event.payload == (None if event.pk == unbuilt.pk else JSON)
        assert event.is_built is (event.pk != unbuilt.pk)
    assert str(EventPayload.objects.get(pk=saved.pk)) == f"payload of event {saved.pk}"


@pytest.mark.django_db
def test_a_payload_given_again_replaces_the_stored_one_and_none_removes_it() -> None:
    event = an_event(payload=JSON)
    event.save()
    event.payload = '{"id":"rebuilt"}'
    event.save()
    assert ConversionEvent.objects.get().payload == '{"id":"rebuilt"}'

    event.payload = None
    event.save()

    assert (event.payload, event.is_built) == (None, False)
    stored = ConversionEvent.objects.get()
    assert (stored.payload, stored.is_built) == (None, False)
    assert not EventPayload.objects.exists()


@pytest.mark.django_db
def test_a_reload_drops_a_payload_given_and_not_saved_as_it_would_a_field() -> None:
    event = an_event(payload=JSON)
    event.save()
    event.payload = None
    event.refresh_from_db()
    reloaded = event  # the same instance, without mypy's narrowing of its payload
    assert (reloaded.payload, reloaded.is_built) == (JSON, True)
    event.payload = '{"id":"unsaved"}'
    event.refresh_from_db(fields=["status"])  # as for a field: other fields only
    assert event.payload == '{"id":"unsaved"}'
    event.refresh_from_db()
    event.save()
    assert ConversionEvent.objects.get().payload == JSON


@pytest.mark.django_db
def test_update_fields_write_the_payload_only_when_they_name_it() -> None:
    event = an_event(payload=None)
    event.save()
    event.payload = JSON
    event.status = ConversionEvent.Status.CANCELLED
    event.save(update_fields=["status"])
    stored = ConversionEvent.objects.get()
    assert (stored.status, stored.payload, stored.built_at) == ("cancelled", None, None)

    event.save(update_fields=["payload"])  # type: ignore[misc]  # see above

    stored = ConversionEvent.objects.get()
    assert (stored.payload, stored.built_at) == (JSON, event.built_at)


@pytest.mark.django_db(transaction=True)
def test_an_event_and_its_payload_are_saved_together_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise IntegrityError("refused")

    monkeypatch.setattr(EventPayload, "save", refuse)

    with pytest.raises(IntegrityError):
        an_event(payload=JSON).save()

    assert not ConversionEvent.objects.exists()


@pytest.mark.django_db
def test_bulk_create_stores_the_payloads_given() -> None:
    events = ConversionEvent.objects.bulk_create(
        [an_event("a", payload=JSON), an_event("b")]
    )

    assert [event.pk for event in events] == list(
        ConversionEvent.objects.order_by("pk").values_list("pk", flat=True)
    )
    assert list(EventPayload.objects.values_list("event_id", "json")) == [
        (events[0].pk, JSON)
    ]
    assert [e.is_built for e in ConversionEvent.objects.order_by("pk")] == [True, False]


class ReadsFromAReplica:
    """A router that sends reads to a replica (unconfigured here: any use fails)."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "replica"


@pytest.mark.django_db
def test_bulk_create_writes_events_and_payloads_in_one_transaction_of_the_write_db(
    settings: Any,
) -> None:
    settings.DATABASE_ROUTERS = [f"{__name__}.ReadsFromAReplica"]
    ConversionEvent.objects.bulk_create([an_event("a", payload=JSON)])
    settings.DATABASE_ROUTERS = []
    assert ConversionEvent.objects.get().payload == JSON


@pytest.mark.django_db
def test_bulk_create_that_cannot_return_ids_refuses_payloads_by_name() -> None:
    with pytest.raises(ValueError, match=r"^payload: bulk_create\(ignore_conflicts"):
        ConversionEvent.objects.bulk_create(
            [an_event(payload=JSON)], ignore_conflicts=True
        )

    assert not ConversionEvent.objects.exists()
    ConversionEvent.objects.bulk_create([an_event()], ignore_conflicts=True)
    assert ConversionEvent.objects.count() == 1


@pytest.mark.django_db
def test_update_refuses_the_payload_by_name() -> None:
    with pytest.raises(TypeError, match=r"^payload: an event's payload is stored"):
        ConversionEvent.objects.update(payload=JSON)  # type: ignore[misc]


@pytest.mark.django_db
def test_the_payloads_of_many_events_are_read_in_the_query_that_reads_them() -> None:
    ConversionEvent.objects.bulk_create(
        an_event(str(n), payload=f'{{"n":{n}}}') for n in range(20)
    )
    ConversionEvent.objects.bulk_create([an_event("unbuilt")])

    with CaptureQueriesContext(connection) as captured:
        payloads = [
            event.payload
            for event in ConversionEvent.objects.select_related("stored_payload")
        ]

    assert len(captured) == 1
    assert payloads.count(None) == 1 and len(set(payloads)) == 21


def test_an_error_kind_is_said_in_words_and_an_unknown_one_as_stored() -> None:
    assert ErrorKind.words("network") == "network: no response"
    # A row kept across a downgrade may hold a kind this version does not define.
    assert ErrorKind.words("from_the_future") == "from_the_future"
