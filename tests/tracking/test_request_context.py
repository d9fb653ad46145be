"""A conversion saved during a request carries the visitor's context, built later.

The order's event is recorded by a post_save receiver, which no view hands a request;
the build runs after the commit, in the worker, where the request is gone. So the
context is kept on the row at record time and used, then dropped, by the build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone

from django_openai_capi import RequestContext, build_pending, track
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.context import serving
from tests.conftest import Swap
from tests.testapp.conversions import OrderConversion, SignupConversion
from tests.testapp.models import Order, Signup

pytestmark = pytest.mark.django_db

Status = ConversionEvent.Status
VISITOR = {
    "REMOTE_ADDR": "203.0.113.9",
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)",
}


def checkout_request(path: str = "/checkout/?oppref=op_abc-123", **meta: Any) -> Any:
    request = RequestFactory().post(path, **{**VISITOR, **meta})
    request.COOKIES["__obref"] = "ob.42"
    return request


def payload(event: ConversionEvent | None = None) -> dict[str, Any]:
    event = event or ConversionEvent.objects.get()
    assert event.payload is not None
    body: dict[str, Any] = json.loads(event.payload)
    return body


def test_an_order_saved_in_a_request_is_sent_with_the_visitors_context() -> None:
    with serving(checkout_request()):
        Order.objects.create(number="A-1")

    assert json.loads(ConversionEvent.objects.get().context or "") == {
        "ip_address": "203.0.113.9",
        "obref": "ob.42",
        "oppref": "op_abc-123",
        "source_url": "http://testserver/checkout/",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    build_pending()

    body = payload()
    assert body["oppref"] == "op_abc-123"
    assert body["user"] == {
        "ip_address": "203.0.113.9",
        "obref": "ob.42",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
    }
    # The conversion names its page; the request's URL only fills a gap.
    assert body["source_url"] == "https://shop.example.com/checkout"


def test_once_built_the_context_is_not_kept() -> None:
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    build_pending()
    assert ConversionEvent.objects.get().context is None


def test_a_save_outside_a_request_keeps_no_context() -> None:
    Order.objects.create(number="A-1")
    assert ConversionEvent.objects.get().context is None
    build_pending()
    assert "oppref" not in payload()


def test_the_conversions_own_values_win(swap_conversion: Swap) -> None:
    class Explicit(OrderConversion):
        def get_oppref(self, obj: Order) -> str:
            return "op_from_the_order"

        def get_user(self, obj: Order) -> Mapping[str, object]:
            return {"ip_address": "198.51.100.1", "email": "a@example.com"}

    swap_conversion(Order, Explicit)
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    build_pending()

    body = payload()
    assert body["oppref"] == "op_from_the_order"
    assert body["user"]["ip_address"] == "198.51.100.1"
    # What the hook leaves empty is still filled.
    assert body["user"]["obref"] == "ob.42"


def test_without_a_source_url_of_its_own_the_page_that_saved_it_is_used() -> None:
    with serving(checkout_request("/accounts/signup/?next=/welcome/")):
        Signup.objects.create(email="a@example.com")
    build_pending()

    body = payload()
    # No query string: it can carry personal data, and the click id is sent apart.
    assert body["source_url"] == "http://testserver/accounts/signup/"
    assert body["action_source"] == "web"


def test_a_stored_value_the_api_would_refuse_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Signup.objects.create(email="a@example.com")
    # As a row recorded by an older version, or edited by hand, could hold.
    ConversionEvent.objects.update(
        context=json.dumps(
            {
                "ip_address": "not-an-ip",
                "oppref": "op_1",
                "source_url": "ftp://files.example.com/x",
            }
        )
    )
    with caplog.at_level(logging.INFO, logger="django_openai_capi.tracking"):
        report = build_pending()

    assert report.built == 1
    body = payload()
    assert body["oppref"] == "op_1"
    assert "user" not in body and "source_url" not in body
    assert "Left the request's ip_address, source_url out of event" in caplog.text
    assert "not-an-ip" not in caplog.text


@pytest.mark.usefixtures("record_failures")
def test_the_conversions_own_invalid_value_still_fails_the_event(
    swap_conversion: Swap,
) -> None:
    class BadUrl(OrderConversion):
        def get_source_url(self, obj: Order) -> str:
            return "checkout"  # no scheme, no host

    swap_conversion(Order, BadUrl)
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    build_pending()

    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert "source_url" in event.last_error
    assert event.context is None  # nothing will read it again


def test_an_object_deleted_before_the_build_drops_its_context() -> None:
    with serving(checkout_request()):
        order = Order.objects.create(number="A-1")
    order.delete()
    build_pending()
    event = ConversionEvent.objects.get()
    assert (event.status, event.context) == (Status.CANCELLED, None)


def test_an_event_recorded_already_expired_keeps_no_context(
    swap_conversion: Swap,
) -> None:
    class Old(OrderConversion):
        def get_event_time(self, obj: Order) -> Any:
            return timezone.now() - timedelta(days=8)

    swap_conversion(Order, Old)
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    event = ConversionEvent.objects.get()
    assert (event.status, event.context) == (Status.EXPIRED, None)


def test_a_conversion_can_drop_the_context_of_a_staff_request(
    swap_conversion: Swap,
) -> None:
    class StaffAware(OrderConversion):
        def get_request_context(
            self, obj: Order, context: RequestContext
        ) -> RequestContext | None:
            return None if "/admin/" in (context.source_url or "") else context

    swap_conversion(Order, StaffAware)
    with serving(checkout_request("/admin/testapp/order/add/")):
        Order.objects.create(number="A-1")
    assert ConversionEvent.objects.get().context is None


def test_a_conversion_can_keep_part_of_the_context(swap_conversion: Swap) -> None:
    class ClickOnly(SignupConversion):
        def get_request_context(
            self, obj: Signup, context: RequestContext
        ) -> RequestContext:
            return RequestContext(oppref=context.oppref)

    swap_conversion(Signup, ClickOnly)
    with serving(checkout_request()):
        Signup.objects.create(email="a@example.com")
    assert ConversionEvent.objects.get().context == '{"oppref":"op_abc-123"}'


class Unkept(OrderConversion):
    def get_request_context(self, obj: Order, context: RequestContext) -> Any:
        return {"oppref": context.oppref}


@pytest.mark.usefixtures("record_failures")
def test_a_hook_returning_something_else_fails_the_event_not_the_save(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, Unkept)
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    event = ConversionEvent.objects.get()
    assert event.status == Status.FAILED
    assert "get_request_context() must return a RequestContext or None, got dict" in (
        event.last_error
    )


def test_with_raise_errors_a_hook_returning_something_else_raises(
    swap_conversion: Swap,
) -> None:
    swap_conversion(Order, Unkept)
    with serving(checkout_request()), pytest.raises(TypeError, match="got dict"):
        Order.objects.create(number="A-1")


@pytest.mark.usefixtures("record_failures")
def test_a_corrected_save_replaces_the_failure_with_its_own_context(
    swap_conversion: Swap,
) -> None:
    class FailsFirst(OrderConversion):
        calls = 0

        def should_track(self, obj: Order, created: bool) -> bool:
            return True

        def get_request_context(
            self, obj: Order, context: RequestContext
        ) -> RequestContext:
            FailsFirst.calls += 1
            if FailsFirst.calls == 1:
                raise RuntimeError("not yet")
            return context

    swap_conversion(Order, FailsFirst)
    with serving(checkout_request()):
        order = Order.objects.create(number="A-1")
        assert ConversionEvent.objects.get().status == Status.FAILED
        order.save()

    event = ConversionEvent.objects.get()
    assert event.status == Status.PENDING
    assert json.loads(event.context or "")["oppref"] == "op_abc-123"


def test_track_inside_a_request_takes_the_served_requests_context() -> None:
    with serving(checkout_request("/contact/?oppref=op_abc-123")):
        track("lead_created", event_id="l-1")

    body = payload()
    assert body["oppref"] == "op_abc-123"
    assert body["source_url"] == "http://testserver/contact/"
    assert body["user"]["user_agent"] == VISITOR["HTTP_USER_AGENT"]
    # track() builds at once: nothing is kept on the row.
    assert ConversionEvent.objects.get().context is None


def test_an_explicit_request_wins_over_the_served_one() -> None:
    other = RequestFactory().get("/other/?oppref=op_other")
    with serving(checkout_request("/contact/")):
        track("lead_created", event_id="l-1", request=other)
    assert payload()["oppref"] == "op_other"


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_a_hook_value_left_empty_is_filled_from_the_context(
    swap_conversion: Swap, empty: str | None
) -> None:
    class Empty(OrderConversion):
        def get_user(self, obj: Order) -> Mapping[str, object]:
            return {"ip_address": empty, "user_agent": empty, "email": "a@example.com"}

        def get_oppref(self, obj: Order) -> str | None:
            return empty

        def get_source_url(self, obj: Order) -> Any:
            return empty

    swap_conversion(Order, Empty)
    with serving(checkout_request()):
        Order.objects.create(number="A-1")
    build_pending()
    body = payload()
    assert (body["user"]["ip_address"], body["user"]["user_agent"]) == (
        VISITOR["REMOTE_ADDR"],
        VISITOR["HTTP_USER_AGENT"],
    )
    assert (body["oppref"], body["source_url"]) == (
        "op_abc-123",
        "http://testserver/checkout/",
    )
