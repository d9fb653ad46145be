"""``{% load openai_capi %}``: the Measurement Pixel, and its half of each conversion.

``{% openai_capi_pixel %}`` in the ``<head>`` of every page renders OpenAI's snippet for
``OPENAI_CAPI_PIXEL_ID`` (nothing when no pixel is configured). ``{% openai_capi_event
order %}`` on the page that follows a conversion (the order confirmation) reports it
from the browser too, with the server event's Pixel ID, event name and event id, so
that the API counts the pair once.

Both carry the request's CSP nonce when it has one, and both ask
``OPENAI_CAPI_CONSENT``: without consent, the pixel is loaded told
``oaiq("consent", false)``, and no event is reported. A tag never breaks the page: a
problem is logged and the tag renders nothing, unless ``OPENAI_CAPI_RAISE_ERRORS``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django import template
from django.db import models
from django.http import HttpRequest
from django.template.context import Context

from django_openai_capi import pixel
from django_openai_capi.conf import conf
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.consent import ConsentEvent, consent_given
from django_openai_capi.tracking.context import current_request
from django_openai_capi.tracking.pixel_event import pixel_event

register = template.Library()
logger = logging.getLogger("django_openai_capi.tracking")


@register.simple_tag(takes_context=True)
def openai_capi_pixel(context: Context, pixel_id: str | None = None) -> str:
    """The pixel's snippet for *pixel_id* (default ``OPENAI_CAPI_PIXEL_ID``), or nothing."""
    pixel_id = pixel_id or conf.OPENAI_CAPI_PIXEL_ID
    if not isinstance(pixel_id, str) or not pixel_id.strip():
        return ""
    request = _request(context)
    try:
        body = pixel.loader(pixel_id, consent=consent_given(request, None))
    except Exception as exc:
        return _failed("openai_capi_pixel", exc)
    return pixel.script(body, nonce=csp_nonce(context, request))


@register.simple_tag(takes_context=True)
def openai_capi_event(context: Context, obj: models.Model) -> str:
    """The pixel's ``measure`` call for *obj*'s recorded conversion, or nothing.

    Nothing when no event was recorded for *obj* (``should_track`` said no, or consent
    was refused when it was saved) or when consent is refused now.
    """
    request = _request(context)
    try:
        event = pixel_event(obj)
        if event is None:
            return ""
        asked = ConsentEvent(
            pixel_id=event.pixel_id,
            event_type=event.event_name,
            event_id=str(event.options["event_id"]),
            source_label=event.source_label,
            obj=obj,
        )
        if not consent_given(request, asked):
            return ""
        body = pixel.measure(
            pixel_id=event.pixel_id,
            page_pixel_id=conf.OPENAI_CAPI_PIXEL_ID,
            event_name=event.event_name,
            data=event.data,
            options=event.options,
        )
    except Exception as exc:
        return _failed("openai_capi_event", exc)
    return pixel.script(body, nonce=csp_nonce(context, request))


def csp_nonce(context: Context, request: HttpRequest | None) -> str | None:
    """The request's CSP nonce, from Django's own CSP or from django-csp, if any.

    Django 6 (``ContentSecurityPolicyMiddleware``) keeps it in ``request._csp_nonce``
    and its ``csp`` context processor as ``csp_nonce``; django-csp in
    ``request.csp_nonce`` and its context processor as ``CSP_NONCE``. Reading one makes
    the middleware put it in the header (the nonces are lazy).
    """
    candidates: list[Callable[[], object]] = [
        lambda: context.get("csp_nonce"),
        lambda: getattr(request, "_csp_nonce", None),
        lambda: getattr(request, "csp_nonce", None),
        lambda: context.get("CSP_NONCE"),
    ]
    for candidate in candidates:
        try:
            value = candidate()
            # Not "if value": Django's LazyNonce is falsy until it is first read.
            text = str(value) if value is not None else ""
        except Exception as exc:  # django-csp raises when its nonce is not configured
            logger.debug("No CSP nonce from there: %s", describe_exception(exc))
            continue
        if text:
            return text
    return None


def _request(context: Context) -> HttpRequest | None:
    request: Any = context.get("request")
    if isinstance(request, HttpRequest):
        return request
    # Without the request context processor: the one the middleware serves.
    return current_request()


def _failed(tag: str, exc: Exception) -> str:
    if conf.OPENAI_CAPI_RAISE_ERRORS:
        raise exc
    logger.error("{%% %s %%} rendered nothing: %s", tag, describe_exception(exc))
    return ""
