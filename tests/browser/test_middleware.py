"""OpenAICapiMiddleware: the landing URL's oppref kept in __oppref, and the request exposed."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie
from typing import Any

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from django_openai_capi.middleware import OpenAICapiMiddleware
from django_openai_capi.tracking.context import current_context, current_request
from tests.conftest import UseConsent

factory = RequestFactory()
THIRTY_DAYS = 30 * 24 * 60 * 60


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def serve(request: HttpRequest, view: Any = ok) -> HttpResponse:
    response = OpenAICapiMiddleware(view)(request)
    assert isinstance(response, HttpResponse)
    return response


def landing(path: str = "/?oppref=op_abc-123", **cookies: str) -> HttpRequest:
    request = factory.get(path)
    request.COOKIES.update(cookies)
    return request


def test_a_landing_url_with_oppref_sets_the_cookie_the_pixel_uses() -> None:
    cookie = serve(landing()).cookies["__oppref"]

    assert cookie.value == "op_abc-123"
    assert cookie["max-age"] == THIRTY_DAYS
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/"
    # The pixel reads it from document.cookie: it must not be HttpOnly.
    assert not cookie["httponly"]
    # Over plain http a Secure cookie would be dropped; over https it is Secure.
    assert not cookie["secure"]


def test_over_https_the_cookie_is_secure() -> None:
    request = factory.get("/?oppref=op_1", secure=True)
    assert serve(request).cookies["__oppref"]["secure"] is True


def test_its_lifetime_is_the_setting(settings: Any) -> None:
    settings.OPENAI_CAPI_OPPREF_COOKIE_AGE = 90 * 86400
    assert serve(landing()).cookies["__oppref"]["max-age"] == 90 * 86400


def test_a_cookie_with_the_same_value_is_left_as_the_pixel_set_it() -> None:
    assert "__oppref" not in serve(landing(__oppref="op_abc-123")).cookies


def test_a_new_ad_click_replaces_the_old_click_id() -> None:
    response = serve(landing("/?oppref=op_new", __oppref="op_old"))
    assert response.cookies["__oppref"].value == "op_new"


@pytest.mark.parametrize("path", ["/", "/?oppref=", "/?utm_source=chatgpt"])
def test_without_a_click_id_in_the_url_nothing_is_set(path: str) -> None:
    assert "__oppref" not in serve(landing(path)).cookies


def test_the_value_is_stored_unchanged_not_quoted() -> None:
    # "=" makes Python's cookie module quote a value; the pixel would read the quotes.
    response = serve(landing("/?oppref=b3A%2Fx%2By%3D%3D"))
    header = response.cookies["__oppref"].OutputString()
    assert header.startswith("__oppref=b3A/x+y==;")
    assert SimpleCookie(header)["__oppref"].value == "b3A/x+y=="


@pytest.mark.parametrize("value", ["op 1", 'op"1', "op;1", "op,1", "op\\1", "opé"])
def test_a_value_a_cookie_cannot_hold_unchanged_is_not_stored(value: str) -> None:
    request = factory.get("/", {"oppref": value})
    assert "__oppref" not in serve(request).cookies


def test_a_cookie_the_view_set_itself_is_kept() -> None:
    def sets_its_own(request: HttpRequest) -> HttpResponse:
        response = HttpResponse()
        response.set_cookie("__oppref", "op_from_the_view")
        return response

    response = serve(landing(), sets_its_own)
    assert response.cookies["__oppref"].value == "op_from_the_view"


def test_without_consent_no_cookie_is_set(use_consent: UseConsent) -> None:
    calls = use_consent("refused")
    request = landing()
    assert "__oppref" not in serve(request).cookies
    # Asked about the visitor, not about an event.
    assert calls == [(request, None)]


def test_with_consent_the_cookie_is_set(use_consent: UseConsent) -> None:
    use_consent("by_cookie")
    response = serve(landing(consent="marketing"))
    assert response.cookies["__oppref"].value == "op_abc-123"


@pytest.mark.usefixtures("record_failures")
def test_a_failing_consent_callable_never_breaks_the_page(
    use_consent: UseConsent, caplog: pytest.LogCaptureFixture
) -> None:
    use_consent("broken")
    with caplog.at_level(logging.ERROR):
        response = serve(landing())
    assert response.content == b"ok"
    assert "__oppref" not in response.cookies


@pytest.mark.usefixtures("record_failures")
def test_an_unexpected_error_is_logged_and_the_page_served(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ValueError("cookie jar full")

    monkeypatch.setattr(HttpResponse, "set_cookie", boom)
    with caplog.at_level(logging.WARNING):
        response = serve(landing())
    assert response.content == b"ok"
    assert "The __oppref cookie was not set: ValueError: cookie jar full" in (
        caplog.text
    )


def test_with_raise_errors_an_unexpected_error_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ValueError("cookie jar full")

    monkeypatch.setattr(HttpResponse, "set_cookie", boom)
    with pytest.raises(ValueError, match="cookie jar full"):
        serve(landing())


def test_the_view_sees_the_request_and_its_context() -> None:
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen["request"] = current_request()
        seen["context"] = current_context()
        return HttpResponse()

    request = landing()
    serve(request, view)

    assert seen["request"] is request
    assert seen["context"].oppref == "op_abc-123"
    assert current_request() is None  # and no longer once the response is made


def test_under_asgi_it_is_async_and_does_the_same() -> None:
    seen: dict[str, Any] = {}

    async def view(request: HttpRequest) -> HttpResponse:
        seen["context"] = current_context()
        return HttpResponse("ok")

    middleware = OpenAICapiMiddleware(view)
    assert iscoroutinefunction(middleware)
    response = async_to_sync(middleware)(landing())

    assert isinstance(response, HttpResponse)
    assert seen["context"].oppref == "op_abc-123"
    assert response.cookies["__oppref"].value == "op_abc-123"
    assert current_request() is None


@pytest.mark.django_db
def test_installed_it_sets_the_cookie_on_the_storefronts_landing_page() -> None:
    client = Client()
    response = client.get("/?oppref=op_abc-123")
    assert response.status_code == 200
    assert client.cookies["__oppref"].value == "op_abc-123"
