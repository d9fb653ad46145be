"""OPENAI_CAPI_CONSENT: when it says no, nothing is recorded, so nothing is sent."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import RequestFactory

from django_openai_capi import ConsentEvent, track
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.consent import consent_given
from django_openai_capi.tracking.context import serving
from tests.conftest import Swap, UseConsent
from tests.testapp.conversions import OrderConversion
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db

factory = RequestFactory()
EVENT = ConsentEvent(pixel_id="test-pixel", event_type="lead_created", event_id="l-1")


def test_without_the_setting_everything_may_be_measured(
    use_consent: UseConsent,
) -> None:
    calls = use_consent(None)
    assert consent_given(None, EVENT) is True
    assert calls == []


@pytest.mark.parametrize(("name", "expected"), [("granted", True), ("refused", False)])
def test_the_callable_decides(
    use_consent: UseConsent, name: str, expected: bool
) -> None:
    calls = use_consent(name)
    request = factory.get("/")
    assert consent_given(request, EVENT) is expected
    assert calls == [(request, EVENT)]


@pytest.mark.usefixtures("record_failures")
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("broken", "RuntimeError: the consent service is down"),
        ("vague", "TypeError: it must return True or False, got str"),
        ("gone", 'ImportError: Module "tests.testapp.consent" does not define'),
        ("NOT_CALLABLE", "NOT_CALLABLE is an object of type int, not a callable"),
    ],
)
def test_a_callable_that_fails_is_a_refusal_and_logged(
    use_consent: UseConsent, caplog: pytest.LogCaptureFixture, name: str, reason: str
) -> None:
    use_consent(name)
    with caplog.at_level(logging.ERROR, logger="django_openai_capi.tracking"):
        assert consent_given(None, EVENT) is False
    assert "so consent is taken as refused" in caplog.text
    assert reason in caplog.text


def test_with_raise_errors_a_failing_callable_raises(use_consent: UseConsent) -> None:
    use_consent("broken")
    with pytest.raises(ConversionError, match="the consent service is down"):
        consent_given(None, EVENT)


def test_a_refused_save_records_nothing(use_consent: UseConsent) -> None:
    calls = use_consent("refused")
    with transaction.atomic():
        order = Order.objects.create(number="A-1")

    assert not ConversionEvent.objects.exists()
    [(request, asked)] = calls
    # Outside a request (a shell, a backfill), the object is what can decide.
    assert request is None
    assert asked == ConsentEvent(
        pixel_id="test-pixel",
        event_type="order_created",
        event_id=f"testapp.order:{order.pk}",
        source_label=f"testapp.Order:{order.pk}",
        obj=order,
    )


@pytest.mark.usefixtures("record_failures")
def test_a_refused_save_records_not_even_a_failure(
    use_consent: UseConsent, swap_conversion: Swap
) -> None:
    class Broken(OrderConversion):
        def get_event_id(self, obj: Order) -> str:
            raise KeyError("number")

    swap_conversion(Order, Broken)
    use_consent("refused")
    Order.objects.create(number="A-1")
    assert not ConversionEvent.objects.exists()


@pytest.mark.parametrize(("cookie", "recorded"), [("marketing", True), ("", False)])
def test_a_save_inside_a_request_asks_about_that_request(
    use_consent: UseConsent, cookie: str, recorded: bool
) -> None:
    calls = use_consent("by_cookie")
    request = factory.post("/checkout/")
    request.COOKIES["consent"] = cookie
    with serving(request):
        Order.objects.create(number="A-1")

    assert ConversionEvent.objects.exists() is recorded
    assert calls[0][0] is request


def test_a_save_that_is_not_a_conversion_asks_nothing(
    use_consent: UseConsent,
) -> None:
    calls = use_consent("refused")
    Order.objects.create(number="A-1", is_paid=False)
    assert calls == []


def test_a_refused_track_call_records_nothing(use_consent: UseConsent) -> None:
    calls = use_consent("refused")
    request = factory.post("/contact/")

    assert track("lead_created", event_id="l-1", request=request) is False
    assert not ConversionEvent.objects.exists()
    assert calls == [
        (request, ConsentEvent("test-pixel", "lead_created", "l-1", source_label=""))
    ]


def test_track_inside_a_request_asks_about_the_served_request(
    use_consent: UseConsent,
) -> None:
    calls = use_consent("by_cookie")
    request = factory.post("/contact/")
    request.COOKIES["consent"] = "marketing"
    with serving(request):
        assert track("lead_created", event_id="l-1", source_label="crm.Lead:1")

    [(asked_request, asked)] = calls
    assert asked_request is request
    assert asked is not None and asked.source_label == "crm.Lead:1"


def test_a_granted_event_is_recorded_as_usual(
    use_consent: UseConsent, settings: Any
) -> None:
    use_consent("granted")
    assert track("lead_created", event_id="l-1")
    assert ConversionEvent.objects.get().status == ConversionEvent.Status.PENDING
