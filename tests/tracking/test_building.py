"""The build step: payloads made from committed rows, and every way it can fail."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_openai_capi import ModelConversion, build_pending
from django_openai_capi.api import hash_identifier, validate_event
from django_openai_capi.exceptions import ConversionError, EventValidationError
from django_openai_capi.models import ConversionEvent, ErrorKind, EventPayload
from django_openai_capi.tracking.registry import registry
from tests.conftest import Swap
from tests.testapp.conversions import OrderConversion
from tests.testapp.models import Order, OrderLine, Signup

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


def place_order(number: str = "A-1", lines: int = 2, **fields: Any) -> Order:
    """Like django-oscar's OrderCreator: the order first, its lines after, one transaction."""
    with transaction.atomic():
        order = Order.objects.create(number=number, **fields)
        for n in range(1, lines + 1):
            OrderLine.objects.create(
                order=order,
                sku=f"sku-{n}",
                name=f"Item {n}",
                quantity=n,
                unit_price_cents=1000 * n,
            )
    return order


def payload(event: ConversionEvent) -> dict[str, Any]:
    assert event.payload is not None
    result: dict[str, Any] = json.loads(event.payload)
    return result


def test_the_payload_carries_the_lines_saved_after_the_order() -> None:
    order = place_order(email=" Jane.Doe@Example.com ")

    report = build_pending()

    assert (report.built, report.total) == (1, 1)
    event = ConversionEvent.objects.get()
    assert event.status == Status.PENDING and event.is_built
    body = payload(event)
    validate_event(body)
    assert body == {
        "id": f"testapp.order:{order.pk}",
        "type": "order_created",
        "timestamp_ms": int(event.event_time.timestamp() * 1000),
        "action_source": "web",
        "source_url": "https://shop.example.com/checkout",
        "user": {"emails_sha256": [hash_identifier("email", "jane.doe@example.com")]},
        "data": {
            "type": "contents",
            "amount": 5000,
            "currency": "USD",
            "contents": [
                {"id": "sku-1", "name": "Item 1", "quantity": 1, "amount": 1000},
                {"id": "sku-2", "name": "Item 2", "quantity": 2, "amount": 2000},
            ],
        },
    }
    # Stored as the canonical JSON that is sent: sorted keys, no spaces.
    assert event.payload == json.dumps(body, sort_keys=True, separators=(",", ":"))


def test_raw_identity_is_never_stored() -> None:
    place_order(email="jane.doe@example.com")
    build_pending()
    assert "jane" not in (ConversionEvent.objects.get().payload or "")


def test_a_second_pass_finds_nothing_to_build() -> None:
    place_order()
    build_pending()
    assert build_pending().total == 0


def test_every_default_hook_makes_a_minimal_valid_event() -> None:
    signup = Signup.objects.create(email="a@example.com")
    build_pending()
    event = ConversionEvent.objects.get()
    assert payload(event) == {
        "id": f"testapp.signup:{signup.pk}",
        "type": "registration_completed",
        "timestamp_ms": int(event.event_time.timestamp() * 1000),
        "data": {"type": "customer_action"},
    }


class WithHooks(ModelConversion[Signup]):
    event_type = "registration_completed"

    def get_oppref(self, obj: Signup) -> str:
        return "oppref_abc"

    def get_opt_out(self, obj: Signup) -> bool:
        return True

    def get_action_source(self, obj: Signup) -> str:
        return "offline"


def test_the_describing_hooks_fill_their_fields(swap_conversion: Swap) -> None:
    swap_conversion(Signup, WithHooks)
    Signup.objects.create(email="a@example.com")
    build_pending()
    body = payload(ConversionEvent.objects.get())
    assert (body["oppref"], body["opt_out"], body["action_source"]) == (
        "oppref_abc",
        True,
        "offline",
    )


def test_app_events_default_to_the_mobile_app_action_source(
    swap_conversion: Swap,
) -> None:
    swap_conversion(
        Signup, type("AppOpen", (ModelConversion,), {"event_type": "app_opened"})
    )
    Signup.objects.create(email="a@example.com")
    build_pending()
    assert payload(ConversionEvent.objects.get())["action_source"] == "mobile_app"


def test_the_event_time_recorded_at_the_save_is_the_one_sent() -> None:
    place_order()
    ConversionEvent.objects.update(event_time=timezone.now() - timedelta(days=2))
    build_pending()
    event = ConversionEvent.objects.get()
    assert payload(event)["timestamp_ms"] == int(event.event_time.timestamp() * 1000)


class BrokenData(OrderConversion):
    def get_data(self, obj: Order) -> Mapping[str, object]:
        raise KeyError("price")


def test_with_raise_errors_a_broken_hook_raises_after_its_failure_is_stored(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, BrokenData)
    order = place_order()
    with pytest.raises(ConversionError) as caught:
        build_pending()
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.source_label == f"testapp.Order:{order.pk}"
    assert ConversionEvent.objects.get().status == Status.FAILED


@pytest.mark.usefixtures("record_failures")
def test_an_exception_in_get_data_leaves_the_order_saved_and_a_failed_event_with_the_error(
    swap_conversion: Swap, caplog: pytest.LogCaptureFixture
) -> None:
    swap_conversion(Order, BrokenData)
    order = place_order()
    with caplog.at_level(logging.ERROR, logger="django_openai_capi.tracking"):
        report = build_pending()

    assert (report.failed, report.built) == (1, 0)
    assert Order.objects.filter(pk=order.pk).exists()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error_kind == ErrorKind.BUILD
    assert (
        event.last_error
        == f"BrokenData.get_data(testapp.Order:{order.pk}) raised KeyError: 'price'"
    )
    assert event.payload is None
    assert event.last_error in caplog.text and "KeyError" in caplog.text


class BadCurrency(OrderConversion):
    def get_data(self, obj: Order) -> Mapping[str, object]:
        return {"amount": 100, "currency": "dollars"}


@pytest.mark.usefixtures("record_failures")
def test_an_invalid_event_fails_with_the_field_it_breaks(swap_conversion: Swap) -> None:
    swap_conversion(Order, BadCurrency)
    order = place_order()
    build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error_kind == ErrorKind.INVALID
    assert event.last_error.startswith(
        f"BadCurrency made an invalid event for testapp.Order:{order.pk}: data.currency:"
    )


def test_with_raise_errors_an_invalid_event_raises_with_the_validation_error_as_cause(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, BadCurrency)
    place_order()
    with pytest.raises(ConversionError, match="data.currency") as caught:
        build_pending()
    assert isinstance(caught.value.__cause__, EventValidationError)


@pytest.mark.usefixtures("record_failures")
def test_only_the_broken_events_fail(swap_conversion: Swap) -> None:
    class FailsOnB(OrderConversion):
        def get_data(self, obj: Order) -> Mapping[str, object]:
            if obj.number.startswith("B"):
                raise ValueError("bad order")
            return super().get_data(obj)

    swap_conversion(Order, FailsOnB)
    for number in ["A-1", "B-1", "A-2", "B-2"]:
        place_order(number)
    report = build_pending()
    assert (report.built, report.failed) == (2, 2)
    by_number = {e.source_label: e.status for e in ConversionEvent.objects.all()}
    assert sorted(by_number.values()) == ["failed", "failed", "pending", "pending"]


def test_an_object_deleted_before_the_build_cancels_its_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order = place_order()
    label = f"testapp.Order:{order.pk}"
    order.delete()
    with caplog.at_level(logging.WARNING, logger="django_openai_capi.tracking"):
        report = build_pending()
    assert report.cancelled == 1
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind) == (
        Status.CANCELLED,
        ErrorKind.SOURCE_MISSING,
    )
    assert event.last_error == f"{label} was deleted before its event was built."
    assert event.last_error in caplog.text


@pytest.mark.usefixtures("record_failures")
def test_an_object_outside_get_queryset_fails_with_that_reason(
    swap_conversion: Swap,
) -> None:
    class PaidOnly(OrderConversion):
        def get_queryset(self) -> QuerySet[Order]:
            return Order.objects.filter(is_paid=True)

    swap_conversion(Order, PaidOnly)
    order = place_order()
    Order.objects.filter(pk=order.pk).update(is_paid=False)
    build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert "exists but PaidOnly.get_queryset() excludes it" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_an_event_whose_registration_is_gone_fails_with_what_to_do() -> None:
    place_order()
    with registry.override(Order, None):
        build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error.startswith("No conversion is registered for testapp.Order")


@pytest.mark.usefixtures("record_failures")
def test_a_source_label_that_names_no_object_fails() -> None:
    place_order()
    ConversionEvent.objects.update(source_label="testapp.Order:not-a-number")
    build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert "does not name a testapp.Order by its primary key" in event.last_error


def test_an_event_past_its_window_expires_instead_of_building() -> None:
    place_order()
    ConversionEvent.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    report = build_pending()
    assert report.expired == 1
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind) == (Status.EXPIRED, ErrorKind.EXPIRED)
    assert event.last_error.startswith("Not built before its 7-day window closed")


def test_limit_bounds_one_pass_and_the_oldest_go_first() -> None:
    orders = [place_order(f"A-{n}", lines=1) for n in range(5)]
    assert build_pending(limit=3).built == 3
    built = ConversionEvent.objects.built()
    assert sorted(e.source_label for e in built) == sorted(
        f"testapp.Order:{o.pk}" for o in orders[:3]
    )
    assert build_pending().built == 2


def test_a_row_claimed_or_built_meanwhile_is_not_overwritten() -> None:
    place_order()
    # A concurrent builder got there first: this pass must leave its payload alone.
    rows = list(ConversionEvent.objects.all())
    event = ConversionEvent.objects.get()
    event.payload = '{"built":"elsewhere"}'
    event.save()
    from django_openai_capi.tracking.building import BuildReport, _build_rows

    report = BuildReport()
    _build_rows(rows, "default", report)
    assert report.built == 0
    assert ConversionEvent.objects.get().payload == '{"built":"elsewhere"}'


@pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs
def test_queries_do_not_grow_with_the_number_of_events(swap_conversion: Swap) -> None:
    class Prefetched(OrderConversion):
        def get_queryset(self) -> QuerySet[Order]:
            return Order.objects.prefetch_related("lines")

        def get_data(self, obj: Order) -> Mapping[str, object]:
            lines = list(obj.lines.all())
            return {
                "amount": sum(x.unit_price_cents * x.quantity for x in lines),
                "currency": "USD",
            }

    swap_conversion(Order, Prefetched)

    def queries_to_build(count: int) -> int:
        for n in range(count):
            place_order(f"{count}-{n}")
        with CaptureQueriesContext(connection) as captured:
            assert build_pending().built == count
        # BEGIN and COMMIT, which only SQLite's backend logs, are not counted.
        return sum(q["sql"] not in ("BEGIN", "COMMIT") for q in captured)

    # Read the rows, load the objects, prefetch their lines, mark them built, store
    # their payloads, look again.
    assert queries_to_build(3) == queries_to_build(60) == 6


@pytest.mark.usefixtures("record_failures")
def test_a_hook_raising_a_validation_error_fails_the_event_as_invalid(
    swap_conversion: Swap,
) -> None:
    from decimal import Decimal

    from django_openai_capi.api import to_minor_units

    class Fractional(OrderConversion):
        def get_data(self, obj: Order) -> Mapping[str, object]:
            return {
                "amount": to_minor_units(Decimal("1.005"), "USD"),
                "currency": "USD",
            }

    swap_conversion(Order, Fractional)
    place_order()
    build_pending()
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind) == (Status.FAILED, ErrorKind.INVALID)


@pytest.mark.usefixtures("record_failures")
def test_many_failures_of_one_kind_are_stored_in_one_update(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, BrokenData)
    for n in range(20):
        place_order(f"A-{n}", lines=0)
    with CaptureQueriesContext(connection) as captured:
        assert build_pending().failed == 20
    events = ConversionEvent._meta.db_table
    updates = [
        q
        for q in captured.captured_queries
        if q["sql"].startswith(f'UPDATE "{events}"')
    ]
    assert len(updates) == 1
    errors = set(ConversionEvent.objects.values_list("last_error", flat=True))
    assert len(errors) == 20  # each keeps its own message, naming its order


def test_a_conversion_describes_itself() -> None:
    assert repr(registry.get(Order)) == "<OrderConversion for testapp.Order>"


@pytest.mark.usefixtures("record_failures")
def test_inside_a_transaction_a_hook_database_error_costs_only_its_own_event(
    swap_conversion: Swap,
) -> None:
    class QueriesAMissingTable(OrderConversion):
        def get_data(self, obj: Order) -> Mapping[str, object]:
            if obj.number.startswith("B"):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT * FROM no_such_table")
            return super().get_data(obj)

    swap_conversion(Order, QueriesAMissingTable)
    for number in ["B-1", "A-1"]:
        place_order(number)
    with transaction.atomic():  # on PostgreSQL, the error would abort it all
        report = build_pending()
    assert (report.built, report.failed) == (1, 1)
    assert (
        "no_such_table" in ConversionEvent.objects.get(status=Status.FAILED).last_error
    )


@pytest.mark.usefixtures("record_failures")
def test_a_get_queryset_that_cannot_run_fails_its_model_only(
    swap_conversion: Swap,
) -> None:
    class BadQueryset(OrderConversion):
        def get_queryset(self) -> QuerySet[Order]:
            # A reverse relation: a FieldError once the query runs.
            return Order.objects.select_related("lines")  # type: ignore[misc]

    swap_conversion(Order, BadQueryset)
    place_order()
    Signup.objects.create(email="a@example.com")
    report = build_pending()
    assert (report.built, report.failed) == (1, 1)
    failed = ConversionEvent.objects.get(status=Status.FAILED)
    assert failed.last_error.startswith(
        "BadQueryset.get_queryset() could not load testapp.Order: FieldError"
    )


@pytest.mark.usefixtures("record_failures")
def test_an_encoding_failure_is_a_build_failure(
    swap_conversion: Swap, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_openai_capi.tracking import building

    def broken(event: object) -> str:
        raise TypeError("cannot encode")

    monkeypatch.setattr(building, "encode_event", broken)
    place_order()
    build_pending()
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.last_error.endswith(
        "could not build the event of "
        + event.source_label
        + ": TypeError: cannot encode"
    )


def test_the_api_key_never_reaches_the_log_of_a_failure(
    swap_conversion: Swap, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False
    settings.OPENAI_CAPI_API_KEY = "sk-live-SECRETKEY"

    class Leaky(OrderConversion):
        def get_data(self, obj: Order) -> Mapping[str, object]:
            raise RuntimeError("upstream said: bad token sk-live-SECRETKEY")

    swap_conversion(Order, Leaky)
    place_order()
    with caplog.at_level(logging.ERROR):
        build_pending()
    assert "RuntimeError: upstream said: bad token [redacted]" in caplog.text
    assert "SECRETKEY" not in caplog.text
    assert "SECRETKEY" not in ConversionEvent.objects.get().last_error


def test_chunks_fit_a_database_with_few_query_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(30):
        place_order(f"A-{n}", lines=0)
    # On the class: Django 6 makes it a property of the SQLite features.
    monkeypatch.setattr(type(connection.features), "max_query_params", 20)
    with CaptureQueriesContext(connection) as captured:
        assert build_pending().built == 30
    updates = [q for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    inserts = [q for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    # (20 - 10) // 2 = 5 events per chunk: one UPDATE marks them, one INSERT stores
    # their payloads (two parameters each).
    assert len(updates) == len(inserts) == 6


@pytest.mark.postgres
def test_payloads_are_inserted_a_parameter_each_not_as_one_escaped_array() -> None:
    for n in range(3):
        place_order(f"A-{n}")

    with CaptureQueriesContext(connection) as captured:
        assert build_pending().built == 3

    [insert] = [q["sql"] for q in captured if q["sql"].startswith("INSERT")]
    assert "UNNEST" not in insert
    assert insert.count('{"action_source"') == 3


def test_without_update_returning_the_rows_are_locked_then_marked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_openai_capi.tracking import building

    monkeypatch.setattr(building, "updates_return_rows", lambda connection: False)
    place_order("A-1")
    place_order("A-2")
    cancelled = ConversionEvent.objects.order_by("pk").last()
    assert cancelled is not None
    rows = list(ConversionEvent.objects.all())
    # Cancelled in the admin after this pass read it: it stays cancelled and unbuilt.
    ConversionEvent.objects.filter(pk=cancelled.pk).update(status=Status.CANCELLED)
    report = building.BuildReport()

    building._build_rows(rows, "default", report)

    assert report.built == 1
    built, left = ConversionEvent.objects.order_by("pk")
    assert built.is_built and payload(built)["id"] == built.event_id
    assert (left.status, left.is_built, left.payload) == (Status.CANCELLED, False, None)


def test_a_payload_left_from_an_earlier_build_is_replaced() -> None:
    place_order()
    build_pending()
    # The marker cleared by hand, to have the event built again: its old payload stays.
    ConversionEvent.objects.update(built_at=None)
    EventPayload.objects.update(json='{"stale":true}')

    assert build_pending().built == 1

    assert payload(ConversionEvent.objects.get())["type"] == "order_created"


@pytest.mark.usefixtures("record_failures")
def test_events_that_cannot_be_built_are_signalled_failed_or_expired(
    swap_conversion: Swap,
) -> None:
    from django_openai_capi import signals

    class FailsOnB(OrderConversion):
        def get_data(self, obj: Order) -> Mapping[str, object]:
            if obj.number.startswith("B"):
                raise ValueError("bad order")
            return super().get_data(obj)

    swap_conversion(Order, FailsOnB)
    place_order("A-1")
    place_order("B-1")
    gone = place_order("C-1")
    old = place_order("D-1")
    gone.delete()
    ConversionEvent.objects.filter(source_label=f"testapp.Order:{old.pk}").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    seen: list[tuple[str, str, str]] = []

    def failed(sender: Any, event: signals.EventInfo, **kwargs: Any) -> None:
        seen.append(("failed", event.source_label, event.kind))

    def expired(sender: Any, event: signals.EventInfo, **kwargs: Any) -> None:
        seen.append(("expired", event.source_label, event.kind))

    signals.event_failed.connect(failed)
    signals.event_expired.connect(expired)
    try:
        build_pending()
    finally:
        signals.event_failed.disconnect(failed)
        signals.event_expired.disconnect(expired)

    labels = {
        order.number: f"testapp.Order:{order.pk}" for order in Order.objects.all()
    }
    # The deleted order's event is cancelled: nothing failed, nothing to signal.
    assert sorted(seen) == [
        ("expired", f"testapp.Order:{old.pk}", "expired"),
        ("failed", labels["B-1"], "build"),
    ]
