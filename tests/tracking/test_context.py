"""The visitor's context: what is read from a request, behind proxies, and how it is kept."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import RequestFactory

from django_openai_capi import RequestContext
from django_openai_capi.tracking.context import (
    current_context,
    current_request,
    serving,
)

factory = RequestFactory()


def context_of(path: str = "/checkout/", **meta: Any) -> RequestContext:
    return RequestContext.from_request(factory.get(path, **meta))


def test_a_landing_request_gives_everything_it_knows() -> None:
    request = factory.get(
        "/landing/?oppref=op_abc-123&utm_source=chatgpt",
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Mozilla/5.0 (X11)",
    )
    request.COOKIES["__obref"] = "ob.42"

    assert RequestContext.from_request(request) == RequestContext(
        oppref="op_abc-123",
        obref="ob.42",
        ip_address="203.0.113.9",
        user_agent="Mozilla/5.0 (X11)",
        source_url="http://testserver/landing/",
    )


def test_a_later_page_has_the_click_id_from_the_cookie() -> None:
    request = factory.get("/checkout/")
    request.COOKIES["__oppref"] = "op_from_cookie"
    assert RequestContext.from_request(request).oppref == "op_from_cookie"


def test_a_new_click_in_the_url_wins_over_the_cookie() -> None:
    request = factory.get("/landing/?oppref=op_new")
    request.COOKIES["__oppref"] = "op_old"
    assert RequestContext.from_request(request).oppref == "op_new"


def test_a_host_not_in_allowed_hosts_gives_no_page(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    assert context_of(HTTP_HOST="evil.example.net").source_url is None


def test_it_is_stored_as_canonical_json_of_what_is_known() -> None:
    context = RequestContext(oppref="op_1", ip_address="203.0.113.9")
    assert context.to_json() == '{"ip_address":"203.0.113.9","oppref":"op_1"}'
    assert RequestContext.from_json(context.to_json()) == context
    assert RequestContext().to_json() is None


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "[1, 2]", '{"oppref": 7, "user_agent": "  ", "x": "y"}'],
)
def test_a_stored_context_that_cannot_be_read_is_left_out(text: str | None) -> None:
    assert RequestContext.from_json(text) == RequestContext()


def test_without_leaves_the_named_fields_out() -> None:
    context = RequestContext(oppref="op_1", obref="ob_1", user_agent="UA")
    assert context.without({"oppref", "user_agent"}) == RequestContext(obref="ob_1")
    assert bool(context) and not bool(RequestContext())


def test_outside_a_request_there_is_none() -> None:
    assert current_request() is None
    assert current_context() is None


def test_inside_a_request_it_is_read_once_and_gone_after() -> None:
    request = factory.get("/checkout/?oppref=op_1")
    with serving(request):
        assert current_request() is request
        first = current_context()
        assert first is not None and first.oppref == "op_1"
        assert current_context() is first
    assert current_request() is None


def test_a_request_django_cannot_parse_gives_an_empty_context(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    request = factory.get("/checkout/?a=1&b=2&c=3&oppref=op_1")
    with serving(request), caplog.at_level(logging.WARNING):
        assert current_context() == RequestContext()
    assert "TooManyFieldsSent" in caplog.text


class TestClientIP:
    """REMOTE_ADDR, unless it is one of the site's own proxies."""

    def test_without_trusted_proxies_x_forwarded_for_is_ignored(self) -> None:
        context = context_of(
            REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1"
        )
        assert context.ip_address == "203.0.113.9"

    def test_behind_a_trusted_proxy_the_hop_before_it_is_the_visitor(
        self, settings: Any
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8"]
        context = context_of(
            REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
        assert context.ip_address == "198.51.100.7"

    def test_a_spoofed_entry_left_of_the_visitor_is_not_believed(
        self, settings: Any
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.10"]
        context = context_of(
            REMOTE_ADDR="10.1.2.3",
            # The visitor wrote "1.2.3.4"; 198.51.100.7 is what the CDN saw.
            HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7, 192.0.2.10",
        )
        assert context.ip_address == "198.51.100.7"

    def test_a_request_from_an_untrusted_address_keeps_it(self, settings: Any) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8"]
        context = context_of(
            REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
        assert context.ip_address == "203.0.113.9"

    @pytest.mark.parametrize(
        ("forwarded", "expected"),
        [
            ("198.51.100.7:51234", "198.51.100.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("unknown", None),  # unreadable: not the proxy's address instead
            ("10.0.0.9, 10.0.0.8", None),  # every hop is ours: no visitor address
            ("", None),
        ],
    )
    def test_forwarded_entries(
        self, settings: Any, forwarded: str, expected: str | None
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8"]
        context = context_of(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
        assert context.ip_address == expected

    def test_a_trusted_proxy_without_the_header_gives_no_address(
        self, settings: Any
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.5"]
        assert context_of(REMOTE_ADDR="10.0.0.5").ip_address is None

    def test_an_ipv4_proxy_seen_through_a_dual_stack_socket_is_trusted(
        self, settings: Any
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = ["10.0.0.0/8"]
        context = context_of(
            REMOTE_ADDR="::ffff:10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
        assert context.ip_address == "198.51.100.7"

    @pytest.mark.parametrize(
        "setting", ["10.0.0.0/8", None, ["not an address", 10, "10.0.0.0/8"]]
    )
    def test_a_malformed_setting_never_breaks_the_request(
        self, settings: Any, setting: object
    ) -> None:
        settings.OPENAI_CAPI_TRUSTED_PROXIES = setting
        context = context_of(
            REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7"
        )
        # Only a well-formed entry is trusted; the rest (check E024) is ignored.
        expected = "198.51.100.7" if isinstance(setting, list) else "10.0.0.5"
        assert context.ip_address == expected
