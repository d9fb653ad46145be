"""The consent gate: whether a visitor's conversions may be measured at all.

``OPENAI_CAPI_CONSENT`` names a callable, ``consent(request, event) -> bool``:

- ``request`` is the request being served (the one passed to ``track()``, or the one
  the middleware exposes), or ``None`` outside a request: a backfill, a shell, a
  worker, a save in a management command.
- ``event`` is a :class:`ConsentEvent` describing the conversion about to be recorded,
  or ``None`` when the question is about the visitor rather than one event (whether the
  middleware may set the ``__oppref`` cookie, whether the pixel may measure).

When it returns ``False`` nothing is recorded, so nothing is sent; the pixel is told
``consent: false`` and measures nothing either. ``opt_out`` is another matter: it is
sent with an event that *is* measured, and only opts it out of personalization.

A callable that raises, or returns something other than ``True`` or ``False``, is
taken as a refusal (and logged): for consent, the safe mistake is to measure one
conversion too few, not one the visitor refused. With ``OPENAI_CAPI_RAISE_ERRORS``
(test settings) it raises :class:`ConversionError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.db import models
from django.http import HttpRequest
from django.utils.module_loading import import_string

from django_openai_capi.conf import conf
from django_openai_capi.exceptions import ConversionError
from django_openai_capi.redaction import describe_exception, format_traceback

logger = logging.getLogger("django_openai_capi.tracking")

Consent = Callable[[HttpRequest | None, "ConsentEvent | None"], object]


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """The conversion a consent callable is asked about."""

    pixel_id: str
    event_type: str
    event_id: str
    #: ``"shop.Order:42"`` for a model conversion; ``track()``'s ``source_label``.
    source_label: str = ""
    #: The saved object of a model conversion (``None`` for ``track()``): consent
    #: recorded on an order can decide for a backfill, where there is no request.
    obj: models.Model | None = None


def consent_given(request: HttpRequest | None, event: ConsentEvent | None) -> bool:
    """Whether ``OPENAI_CAPI_CONSENT`` allows measuring; ``True`` when it is not set."""
    path = conf.OPENAI_CAPI_CONSENT
    if path is None:
        return True
    try:
        answer = _load(path)(request, event)
        if not isinstance(answer, bool):
            raise TypeError(
                f"it must return True or False, got {type(answer).__name__}"
            )
    except Exception as exc:
        message = (
            f"OPENAI_CAPI_CONSENT ({path}) failed, so consent is taken as refused: "
            + describe_exception(exc)
        )
        if conf.OPENAI_CAPI_RAISE_ERRORS:
            raise ConversionError(message) from exc
        logger.error("%s\n%s", message, format_traceback(exc))
        return False
    return answer


@lru_cache(maxsize=4)
def _load(path: str) -> Consent:
    found = import_string(path)
    if not callable(found):
        raise TypeError(
            f"{path} is an object of type {type(found).__name__}, not a callable"
        )
    consent: Consent = found
    return consent
