"""``track()``: conversions that are not a model save, built and stored at once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.test import RequestFactory
from django.utils import timezone

from django_openai_capi import track
from django_openai_capi.api import hash_identifier, validate_event
from django_openai_capi.exceptions import ConversionError, EventValidationError
from django_openai_capi.models import ConversionEvent, ErrorKind, EventPayload
from django_openai_capi.tracking.track import INVALID_ID_PREFIX

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status


def stored() -> dict[str, Any]:
    event = ConversionEvent.objects.get()
    assert event.payload is not None
    body: dict[str, Any] = json.loads(event.payload)
    return body


def test_track_records_a_built_pending_event() -> None:
    assert track(
        "lead_created",
        event_id="lead-1",
        user={"email": "a@example.com"},
        source_label="form:contact",
    )

    event = ConversionEvent.objects.get()
    assert (event.status, event.pixel_id, event.event_type, event.event_id) == (
        Status.PENDING,
        "test-pixel",
        "lead_created",
        "lead-1",
    )
    assert event.source_label == "form:contact"
    body = stored()
    validate_event(body)
    assert body == {
        "id": "lead-1",
        "type": "lead_created",
        "timestamp_ms": int(event.event_time.timestamp() * 1000),
        "user": {"emails_sha256": [hash_identifier("email", "a@example.com")]},
        "data": {"type": "customer_action"},
    }


def test_the_same_event_tracked_twice_is_recorded_once() -> None:
    assert track("lead_created", event_id="lead-1") is True
    assert track("lead_created", event_id="lead-1") is False
    assert ConversionEvent.objects.count() == 1


def test_the_same_id_for_another_type_or_pixel_is_another_event() -> None:
    track("lead_created", event_id="1")
    track("registration_completed", event_id="1")
    track("lead_created", event_id="1", pixel_id="other-pixel")
    assert ConversionEvent.objects.count() == 3


def test_a_rolled_back_transaction_takes_the_event_with_it() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        track("lead_created", event_id="lead-1")
        raise RuntimeError
    assert not ConversionEvent.objects.exists()


def test_every_argument_reaches_the_event() -> None:
    when = timezone.now() - timedelta(hours=1)
    track(
        "custom",
        event_id="demo-9",
        custom_event_name="demo_booked",
        event_time=when,
        data={"amount": 4200, "currency": "usd", "plan_id": "pro"},
        source_url="https://example.com/book",
        oppref="oppref_abc",
        opt_out=True,
        action_source="phone_call",
        pixel_id="pixel-b",
    )
    event = ConversionEvent.objects.get()
    assert event.pixel_id == "pixel-b" and event.event_time == when
    assert stored() == {
        "id": "demo-9",
        "type": "custom",
        "custom_event_name": "demo_booked",
        "timestamp_ms": int(when.timestamp() * 1000),
        "source_url": "https://example.com/book",
        "action_source": "phone_call",
        "oppref": "oppref_abc",
        "opt_out": True,
        "data": {"type": "custom", "amount": 4200, "currency": "USD", "plan_id": "pro"},
    }


def test_the_request_gives_click_ids_ip_agent_and_page() -> None:
    request = RequestFactory().post(
        "/signup/?oppref=oppref_from_url&email=jane@example.com",
        HTTP_USER_AGENT="Mozilla/5.0 (X11)",
        REMOTE_ADDR="203.0.113.7",
    )
    request.COOKIES = {"__oppref": "oppref_from_cookie", "__obref": "obref-1"}

    track("registration_completed", event_id="u-1", request=request)

    body = stored()
    assert body["oppref"] == "oppref_from_url"
    # The page without its query string, which here carries an email address.
    assert body["source_url"] == "http://testserver/signup/"
    assert body["action_source"] == "web"
    assert body["user"] == {
        "obref": "obref-1",
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11)",
    }


def test_the_oppref_cookie_is_used_when_the_url_has_none() -> None:
    request = RequestFactory().get("/thanks/")
    request.COOKIES = {"__oppref": "oppref_from_cookie"}
    track("lead_created", event_id="l-1", request=request)
    assert stored()["oppref"] == "oppref_from_cookie"


def test_explicit_arguments_win_over_the_request() -> None:
    request = RequestFactory().get(
        "/x/?oppref=from_url", HTTP_USER_AGENT="Agent/1", REMOTE_ADDR="203.0.113.7"
    )
    request.COOKIES = {"__obref": "cookie-obref"}
    track(
        "lead_created",
        event_id="l-1",
        request=request,
        oppref="explicit",
        source_url="https://shop.example.com/lead",
        user={"ip_address": "198.51.100.1", "obref": "given-obref"},
    )
    body = stored()
    assert body["oppref"] == "explicit"
    assert body["source_url"] == "https://shop.example.com/lead"
    assert body["user"] == {
        "ip_address": "198.51.100.1",
        "obref": "given-obref",
        "user_agent": "Agent/1",
    }


def test_odd_request_values_are_left_out_rather_than_costing_the_event() -> None:
    request = RequestFactory().get(
        "/x/", REMOTE_ADDR="unix-socket", HTTP_HOST="evil.example"
    )
    request.COOKIES = {"__oppref": "   "}
    track("lead_created", event_id="l-1", request=request)
    assert stored() == {
        "id": "l-1",
        "type": "lead_created",
        "timestamp_ms": stored()["timestamp_ms"],
        "data": {"type": "customer_action"},
    }


def test_an_unknown_event_type_raises_even_in_production(settings: Any) -> None:
    settings.OPENAI_CAPI_RAISE_ERRORS = False
    with pytest.raises(EventValidationError, match="unknown event type 'purchase'"):
        track("purchase", event_id="1")
    assert not ConversionEvent.objects.exists()


def test_with_raise_errors_invalid_data_raises_a_precise_error() -> None:
    with pytest.raises(EventValidationError) as caught:
        track("order_created", event_id="o-1", data={"amount": 12.5, "currency": "USD"})
    assert caught.value.path == "data.amount"
    assert not ConversionEvent.objects.exists()


@pytest.mark.usefixtures("record_failures")
def test_invalid_data_is_recorded_as_failed_with_the_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="django_openai_capi.tracking"):
        assert track(
            "order_created", event_id="o-1", data={"amount": 12.5, "currency": "USD"}
        )
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind, event.event_id) == (
        Status.FAILED,
        ErrorKind.INVALID,
        "o-1",
    )
    assert event.last_error.startswith(
        "track('order_created') could not record its event: data.amount:"
    )
    assert event.payload is None
    assert event.last_error in caplog.text


@pytest.mark.usefixtures("record_failures")
def test_no_pixel_configured_is_recorded_not_raised(settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None
    track("lead_created", event_id="l-1")
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind, event.pixel_id) == (
        Status.FAILED,
        ErrorKind.BUILD,
        "",
    )
    assert "OPENAI_CAPI_PIXEL_ID is not set" in event.last_error


def test_with_raise_errors_no_pixel_raises(settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None
    with pytest.raises(Exception, match="OPENAI_CAPI_PIXEL_ID is not set"):
        track("lead_created", event_id="l-1")


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize("event_id", ["", "   ", None, 42])
def test_an_event_id_with_nothing_to_show_is_recorded_under_a_fresh_id(
    event_id: Any,
) -> None:
    track("lead_created", event_id=event_id)
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert event.event_id.startswith(INVALID_ID_PREFIX)
    assert "event_id must be a non-empty string" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_a_naive_event_time_is_recorded_as_failed() -> None:
    track("lead_created", event_id="l-1", event_time=datetime(2026, 11, 20))
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert "event_time must be a timezone-aware datetime" in event.last_error


@pytest.mark.usefixtures("record_failures")
def test_an_event_older_than_the_window_is_recorded_as_expired() -> None:
    track("lead_created", event_id="l-1", event_time=datetime(2020, 1, 1, tzinfo=UTC))
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error_kind) == (Status.EXPIRED, ErrorKind.EXPIRED)
    assert event.last_error.startswith("Recorded after its 7-day window had closed")


def test_conversion_error_is_what_an_identity_problem_raises() -> None:
    with pytest.raises(ConversionError, match="event_id must be a non-empty string"):
        track("lead_created", event_id="")


def test_a_request_without_a_client_address_still_records() -> None:
    request = RequestFactory().get("/x/")
    del request.META["REMOTE_ADDR"]
    track("lead_created", event_id="l-1", request=request)
    assert "user" not in stored()


def test_a_scoped_ipv6_address_is_left_out() -> None:
    request = RequestFactory().get("/x/", REMOTE_ADDR="fe80::1%eth0")
    track("lead_created", event_id="l-1", request=request)
    assert ConversionEvent.objects.get().status == Status.PENDING
    assert "user" not in stored()


@pytest.mark.django_db(transaction=True)  # outside any transaction, as in a view
def test_the_event_and_its_payload_are_written_together_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bulk_create = QuerySet.bulk_create

    def refuse_payloads(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        if self.model is EventPayload:
            raise IntegrityError("refused")
        return bulk_create(self, *args, **kwargs)

    track("lead_created", event_id="lead-1")
    assert EventPayload.objects.get().json == ConversionEvent.objects.get().payload
    monkeypatch.setattr(QuerySet, "bulk_create", refuse_payloads)

    with pytest.raises(IntegrityError):
        track("lead_created", event_id="lead-2")

    assert list(ConversionEvent.objects.values_list("event_id", flat=True)) == [
        "lead-1"
    ]


@pytest.mark.usefixtures("record_failures")
def test_a_corrected_call_replaces_the_failure_that_held_its_id() -> None:
    track("order_created", event_id="o-1", data={"amount": 12.5, "currency": "USD"})
    assert (
        track("order_created", event_id="o-1", data={"amount": 1250, "currency": "USD"})
        is True
    )
    event = ConversionEvent.objects.get()
    assert (event.status, event.last_error) == (Status.PENDING, "")
    assert stored()["data"]["amount"] == 1250


@pytest.mark.usefixtures("record_failures")
def test_a_failure_replaced_over_a_payload_left_in_its_table_keeps_the_new_one() -> (
    None
):
    # built_at cleared by hand on a failed row whose payload row stayed: replacing the
    # failure must not collide with it (inside the host's transaction).
    track("order_created", event_id="o-1", data={"amount": 12.5, "currency": "USD"})
    failed = ConversionEvent.objects.get()
    EventPayload.objects.create(event=failed, json='{"left":"behind"}')

    assert track(
        "order_created", event_id="o-1", data={"amount": 1250, "currency": "USD"}
    )

    assert ConversionEvent.objects.get().status == Status.PENDING
    assert stored()["data"]["amount"] == 1250


@pytest.mark.usefixtures("record_failures")
def test_a_sent_or_pending_event_is_never_replaced() -> None:
    track("lead_created", event_id="l-1", user={"email": "first@example.com"})
    assert (
        track("lead_created", event_id="l-1", user={"email": "second@example.com"})
        is False
    )
    assert stored()["user"]["emails_sha256"] == [
        hash_identifier("email", "first@example.com")
    ]
