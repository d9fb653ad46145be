"""{% openai_capi_pixel %} and {% openai_capi_event %}: the snippet, nonces, escaping, dedup."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import pytest
from django.db import transaction
from django.http import HttpRequest
from django.template import Context, Template
from django.test import RequestFactory

from django_openai_capi import build_pending
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.models import ConversionEvent
from django_openai_capi.tracking.context import serving
from tests.conftest import Swap, UseConsent
from tests.testapp.conversions import OrderConversion, SignupConversion
from tests.testapp.models import Order, OrderLine, Signup

factory = RequestFactory()

# The official snippet from developers.openai.com/ads/measurement-pixel, for pixel
# "test-pixel" (the test settings' OPENAI_CAPI_PIXEL_ID).
OFFICIAL_SNIPPET = """<script>
  (function (w, d, s, u) {
    if (w.oaiq) return;
    var q = function () {
      q.q.push(arguments);
    };
    q.q = [];
    w.oaiq = q;
    var js = d.createElement(s);
    js.async = true;
    js.src = u;
    var f = d.getElementsByTagName(s)[0];
    f.parentNode.insertBefore(js, f);
  })(window, document, "script", "https://bzrcdn.openai.com/sdk/oaiq.min.js");
  oaiq("init", {"pixelId": "test-pixel"});
</script>"""


def render(source: str, request: HttpRequest | None = None, **context: Any) -> str:
    template = Template("{% load openai_capi %}" + source)
    if request is not None:
        context["request"] = request
    return template.render(Context(context))


def pixel(request: HttpRequest | None = None, **context: Any) -> str:
    return render("{% openai_capi_pixel %}", request, **context)


def calls(html: str) -> list[list[Any]]:
    """Every oaiq(...) call in *html*, its arguments decoded."""
    return [
        json.loads(f"[{arguments}]")
        for arguments in re.findall(r"oaiq\((.*?)\);", html)
        if not arguments.startswith("function")
    ]


class FakeLazyNonce:
    """Like Django 6's LazyNonce: falsy until read, then the same value."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.read = False

    def __bool__(self) -> bool:
        return self.read

    def __str__(self) -> str:
        self.read = True
        return self.value


class TestPixel:
    def test_it_renders_the_official_snippet_for_the_configured_pixel(self) -> None:
        assert pixel(factory.get("/")) == OFFICIAL_SNIPPET

    @pytest.mark.parametrize("pixel_id", [None, "", "  "])
    def test_without_a_pixel_nothing_is_rendered(
        self, settings: Any, pixel_id: str | None
    ) -> None:
        settings.OPENAI_CAPI_PIXEL_ID = pixel_id
        assert pixel(factory.get("/")) == ""

    def test_a_page_can_name_another_pixel(self) -> None:
        html = render('{% openai_capi_pixel "px_other" %}', factory.get("/"))
        assert calls(html) == [["init", {"pixelId": "px_other"}]]

    def test_every_value_is_escaped(self, settings: Any) -> None:
        settings.OPENAI_CAPI_PIXEL_ID = '</script><script>alert("x")</script>\u2028'
        html = pixel(factory.get("/"))

        assert html.count("</script>") == 1 and html.count("<script") == 1
        assert r'"\u003C/script\u003E\u003Cscript\u003Ealert(\"x\")' in html
        assert "\\u2028" in html
        assert calls(html)[-1] == [
            "init",
            {"pixelId": '</script><script>alert("x")</script>\u2028'},
        ]

    def test_without_consent_the_pixel_is_told_before_init(
        self, use_consent: UseConsent
    ) -> None:
        calls_made = use_consent("refused")
        request = factory.get("/")
        assert calls(pixel(request)) == [
            ["consent", False],
            ["init", {"pixelId": "test-pixel"}],
        ]
        assert calls_made == [(request, None)]

    def test_with_consent_it_is_the_plain_snippet(
        self, use_consent: UseConsent
    ) -> None:
        use_consent("by_cookie")
        request = factory.get("/")
        request.COOKIES["consent"] = "marketing"
        assert pixel(request) == OFFICIAL_SNIPPET

    def test_with_raise_errors_a_failing_consent_callable_raises(
        self, use_consent: UseConsent
    ) -> None:
        use_consent("broken")
        with pytest.raises(ConversionError, match="the consent service is down"):
            pixel(factory.get("/"))

    @pytest.mark.usefixtures("record_failures")
    def test_a_failing_consent_callable_is_a_refusal(
        self, use_consent: UseConsent
    ) -> None:
        use_consent("broken")
        assert calls(pixel(factory.get("/")))[0] == ["consent", False]

    def test_without_the_request_in_the_context_the_served_request_is_used(
        self, use_consent: UseConsent
    ) -> None:
        calls_made = use_consent("granted")
        request = factory.get("/")
        request._csp_nonce = "n0nce"  # type: ignore[attr-defined]
        with serving(request):
            html = pixel()
        assert html.startswith('<script nonce="n0nce">')
        assert calls_made == [(request, None)]


class TestNonce:
    def test_django_6s_nonce_is_read_and_so_sent_in_the_header(self) -> None:
        request = factory.get("/")
        nonce = FakeLazyNonce("abc123")
        request._csp_nonce = nonce  # type: ignore[attr-defined]

        assert pixel(request).startswith('<script nonce="abc123">')
        # Reading it is what makes Django's middleware put it in the header.
        assert nonce.read

    def test_django_6s_context_processor_nonce(self) -> None:
        html = pixel(factory.get("/"), csp_nonce=FakeLazyNonce("from-context"))
        assert html.startswith('<script nonce="from-context">')

    def test_django_csp_nonce(self) -> None:
        request = factory.get("/")
        request.csp_nonce = "from-django-csp"  # type: ignore[attr-defined]
        assert pixel(request).startswith('<script nonce="from-django-csp">')

    def test_django_csp_context_processor_nonce(self) -> None:
        html = pixel(factory.get("/"), CSP_NONCE="from-csp-processor")
        assert html.startswith('<script nonce="from-csp-processor">')

    def test_a_nonce_that_cannot_be_read_is_skipped(self) -> None:
        class Unconfigured:
            def __str__(self) -> str:
                raise RuntimeError("CSP_INCLUDE_NONCE_IN is not set")

        request = factory.get("/")
        request.csp_nonce = Unconfigured()  # type: ignore[attr-defined]
        assert pixel(request, CSP_NONCE="fallback").startswith(
            '<script nonce="fallback">'
        )

    def test_the_nonce_is_escaped(self) -> None:
        html = pixel(factory.get("/"), csp_nonce='"><img src=x onerror=alert(1)>')
        assert html.startswith(
            '<script nonce="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;">'
        )

    def test_without_a_nonce_there_is_no_attribute(self) -> None:
        assert pixel(factory.get("/"), csp_nonce="").startswith("<script>\n")


def place_order(number: str = "A-1", **fields: Any) -> Order:
    with transaction.atomic():
        order = Order.objects.create(number=number, **fields)
        OrderLine.objects.create(
            order=order, sku="sku-1", name="Tea", quantity=2, unit_price_cents=1250
        )
    return order


def event_tag(obj: object, request: HttpRequest | None = None) -> str:
    return render("{% openai_capi_event obj %}", request or factory.get("/"), obj=obj)


def server_event() -> dict[str, Any]:
    build_pending()
    stored = ConversionEvent.objects.get().payload
    assert stored is not None
    body: dict[str, Any] = json.loads(stored)
    return body


@pytest.mark.django_db
class TestEvent:
    def test_the_pixel_event_has_the_server_events_name_id_and_data(self) -> None:
        order = place_order()
        html = event_tag(order)
        server = server_event()

        [[command, name, data, options]] = calls(html)
        assert command == "measure"
        assert name == server["type"] == "order_created"
        assert options == {"event_id": server["id"]}
        assert server["id"] == f"testapp.order:{order.pk}"
        assert (
            data
            == server["data"]
            == {
                "type": "contents",
                "amount": 2500,
                "currency": "USD",
                "contents": [
                    {"id": "sku-1", "name": "Tea", "quantity": 2, "amount": 1250}
                ],
            }
        )
        assert html.startswith("<script>\n  if (window.oaiq) {")

    def test_once_built_the_stored_payload_is_what_the_pixel_gets(
        self, swap_conversion: Swap
    ) -> None:
        order = place_order()
        server = server_event()

        class Changed(OrderConversion):
            def get_data(self, obj: Order) -> Mapping[str, object]:
                raise AssertionError("the stored payload is used, not the hooks")

        swap_conversion(Order, Changed)
        [[_, _, data, options]] = calls(event_tag(order))
        assert (data, options) == (server["data"], {"event_id": server["id"]})

    def test_an_object_whose_event_was_not_recorded_gets_none(self) -> None:
        order = place_order(is_paid=False)  # should_track said no
        assert event_tag(order) == ""

    def test_without_consent_now_nothing_is_reported(
        self, use_consent: UseConsent
    ) -> None:
        order = place_order()
        calls_made = use_consent("refused")
        request = factory.get("/")

        assert event_tag(order, request) == ""
        [(asked_request, asked)] = calls_made
        assert asked_request is request
        assert (asked.event_id, asked.obj) == (f"testapp.order:{order.pk}", order)

    def test_a_custom_event_carries_its_name_in_the_options(
        self, swap_conversion: Swap
    ) -> None:
        class Newsletter(SignupConversion):
            event_type = "custom"
            custom_event_name = "newsletter_signup"

        swap_conversion(Signup, Newsletter)
        signup = Signup.objects.create(email="a@example.com")

        [[_, name, data, options]] = calls(event_tag(signup))
        assert name == "custom"
        assert data == {"type": "custom"}
        assert options == {
            "event_id": f"testapp.signup:{signup.pk}",
            "custom_event_name": "newsletter_signup",
        }

    def test_an_opted_out_event_is_opted_out_in_the_browser_too(
        self, swap_conversion: Swap
    ) -> None:
        class OptedOut(OrderConversion):
            def get_opt_out(self, obj: Order) -> bool:
                return True

        swap_conversion(Order, OptedOut)
        order = place_order()
        [[_, _, _, options]] = calls(event_tag(order))
        assert options["opt_out"] is True

    def test_another_pixel_is_initialised_and_sent_the_event_alone(
        self, swap_conversion: Swap
    ) -> None:
        class OtherPixel(OrderConversion):
            pixel_id = "px_brand_b"

        swap_conversion(Order, OtherPixel)
        order = place_order()
        [init, measure_single] = calls(event_tag(order))
        assert init == ["init", {"pixelId": "px_brand_b"}]
        assert measure_single[:3] == ["measureSingle", "px_brand_b", "order_created"]
        assert measure_single[4] == {"event_id": f"testapp.order:{order.pk}"}

    def test_every_value_is_escaped(self) -> None:
        with transaction.atomic():
            order = Order.objects.create(number="A-1")
            OrderLine.objects.create(
                order=order,
                sku="sku-1",
                name="</script><script>alert(1)</script>",
                quantity=1,
                unit_price_cents=100,
            )
        html = event_tag(order)
        assert html.count("</script>") == 1
        [[_, _, data, _]] = calls(html)
        assert data["contents"][0]["name"] == "</script><script>alert(1)</script>"

    def test_the_nonce_is_on_the_event_script_too(self) -> None:
        order = place_order()
        html = render(
            "{% openai_capi_event obj %}",
            factory.get("/"),
            obj=order,
            csp_nonce="n0nce",
        )
        assert html.startswith('<script nonce="n0nce">')

    def test_data_that_cannot_be_built_leaves_the_ids(
        self,
        swap_conversion: Swap,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        class Broken(OrderConversion):
            def get_data(self, obj: Order) -> Mapping[str, object]:
                raise KeyError("price")

        swap_conversion(Order, Broken)
        order = place_order()
        with caplog.at_level(logging.WARNING):
            [[_, name, data, options]] = calls(event_tag(order))
        assert (name, data) == ("order_created", {"type": "contents"})
        assert options == {"event_id": f"testapp.order:{order.pk}"}
        assert f"The pixel event of testapp.Order:{order.pk} carries no data: " in (
            caplog.text
        )
        assert "KeyError: 'price'" in caplog.text

    def test_an_object_without_a_conversion_is_a_mistake_raised_in_tests(
        self,
    ) -> None:
        order = place_order()
        line = order.lines.get()
        with pytest.raises(
            ConversionError, match="testapp.OrderLine has no registered"
        ):
            event_tag(line)

    @pytest.mark.usefixtures("record_failures")
    def test_in_production_a_mistake_renders_nothing_and_is_logged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        line = place_order().lines.get()
        with caplog.at_level(logging.ERROR):
            assert event_tag(line) == ""
        assert "{% openai_capi_event %} rendered nothing: ConversionError" in (
            caplog.text
        )

    def test_an_identity_hook_that_raises_is_reported_with_its_name(
        self, swap_conversion: Swap
    ) -> None:
        order = place_order()

        class Broken(OrderConversion):
            def get_event_id(self, obj: Order) -> str:
                raise KeyError("number")

        swap_conversion(Order, Broken)
        with pytest.raises(ConversionError, match="Broken could not name the event"):
            event_tag(order)


@pytest.mark.django_db
class TestEventMistakes:
    def test_a_variable_that_is_not_set_is_named_as_the_mistake(self) -> None:
        with pytest.raises(
            ConversionError, match="got an empty string: is the variable set"
        ):
            render("{% openai_capi_event missing %}", factory.get("/"))

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            (42, "got 42:"),
            ("order", "got 'order':"),
            (None, "got None:"),
            # A dict in the context, or an object whose repr is the customer's email,
            # is named by its type: the error reaches logs.
            ({"email": "ada@example.com"}, "got {'email': a string of 15 characters}:"),
            (
                type("Row", (), {"__repr__": lambda self: "ada@example.com"})(),
                "got a value of type Row:",
            ),
        ],
    )
    def test_a_value_that_is_not_a_model_instance_is_shown(
        self, value: object, shown: str
    ) -> None:
        with pytest.raises(ConversionError, match=shown):
            render("{% openai_capi_event order %}", factory.get("/"), order=value)

    def test_with_the_outbox_routed_elsewhere_the_event_is_found_there(
        self, settings: Any
    ) -> None:
        order = place_order()
        settings.DATABASE_ROUTERS = ["tests.tracking.test_recording.OutboxElsewhere"]
        [[_, _, _, options]] = calls(event_tag(order))
        assert options == {"event_id": f"testapp.order:{order.pk}"}
