"""``OpenAICapiMiddleware``: the visitor's context during every request, and ``__oppref``.

Two jobs, both so that a host's views need no code for attribution:

- During the request it exposes the request to tracking
  (:func:`~django_openai_capi.tracking.context.current_context`): an order saved by a
  view is recorded by a ``post_save`` receiver that is handed no request, and this is
  how its event still carries the visitor's ``oppref``, ``obref``, IP, user agent and
  page.
- On a landing request whose URL carries ``oppref``, it keeps the value, unchanged, in
  the first-party ``__oppref`` cookie the Measurement Pixel itself uses, so that the
  checkout three pages later still has it on a site without the pixel (or whose visitor
  blocks it).

Install it after ``AuthenticationMiddleware``, so that a consent callable can read
``request.user``. It works under WSGI and ASGI alike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from django_openai_capi.conf import conf
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.consent import consent_given
from django_openai_capi.tracking.context import OPPREF_COOKIE, OPPREF_PARAM, serving

if TYPE_CHECKING:
    GetResponse = Callable[[HttpRequest], HttpResponseBase]
    AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]

logger = logging.getLogger("django_openai_capi.tracking")

# RFC 6265's cookie-octet: what a cookie value may hold without quoting. A value that
# needs quotes would reach the pixel (which reads document.cookie) with them, changed.
_COOKIE_OCTETS = frozenset(
    chr(code) for code in range(0x21, 0x7F) if chr(code) not in {'"', ",", ";", "\\"}
)


class OpenAICapiMiddleware:
    """Expose the request to tracking, and keep a landing URL's ``oppref`` in a cookie."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(
        self, request: HttpRequest
    ) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        get_response = cast("GetResponse", self.get_response)
        with serving(request):
            response = get_response(request)
            remember_oppref(request, response)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        get_response = cast("AsyncGetResponse", self.get_response)
        with serving(request):
            response = await get_response(request)
            remember_oppref(request, response)
        return response


def remember_oppref(request: HttpRequest, response: HttpResponseBase) -> None:
    """Set ``__oppref`` from the URL's ``oppref``, unless it holds that value already.

    A different value in the URL replaces the cookie's: it is a new ad click, and the
    conversion belongs to the click that brought the visitor, as the pixel itself
    decides. Nothing is set without consent, or when the view set the cookie itself.
    Never raises: a cookie is not worth a failed page.
    """
    try:
        oppref = request.GET.get(OPPREF_PARAM)
        if not oppref or request.COOKIES.get(OPPREF_COOKIE) == oppref:
            return
        if OPPREF_COOKIE in response.cookies or not _storable(oppref):
            return
        if not consent_given(request, None):
            return
        response.set_cookie(
            OPPREF_COOKIE,
            oppref,
            max_age=conf.OPENAI_CAPI_OPPREF_COOKIE_AGE,
            secure=request.is_secure(),
            # Not HttpOnly: the pixel reads (and renews) this cookie in the browser,
            # and script cannot overwrite an HttpOnly cookie of the same name.
            httponly=False,
            samesite="Lax",
        )
        # Stored as it came, never quoted or escaped: the value is opaque.
        response.cookies[OPPREF_COOKIE].set(OPPREF_COOKIE, oppref, oppref)
    except Exception as exc:
        if conf.OPENAI_CAPI_RAISE_ERRORS:
            raise
        logger.warning("The __oppref cookie was not set: %s", describe_exception(exc))


def _storable(value: str) -> bool:
    return all(char in _COOKIE_OCTETS for char in value)
