"""Does the key work for the pixel? One ``validate_only`` request, and what its answer means.

The API answers a credentials problem, an outage on its side and a bad event with
statuses and messages that are easy to mistake for one another (a 503 "Authentication
backend failure" is OpenAI's outage, not a bad key; after it, a 401 "Unauthorized" on
a key that used to work means the key must be created again). :func:`verify` sends one
synthetic event (``dry_run.py``) and turns the answer into a diagnosis a person can act
on: ``answers.py`` decides what the answer means, ``advice.py`` words it. The key is
never part of what it returns.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urlsplit

from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.delivery import pauses
from django_openai_capi.delivery.advice import explain
from django_openai_capi.delivery.answers import Answer, Cause
from django_openai_capi.delivery.dry_run import RoundTrip, send_test_event
from django_openai_capi.exceptions import (
    CapiConfigurationError,
    EventValidationError,
    UnusableApiKeyError,
)
from django_openai_capi.models import ErrorKind, PixelPause


class Diagnosis(enum.Enum):
    """What the answer (or the configuration, before any request) says."""

    WORKS = "works"
    NO_PIXEL = "no_pixel"
    NO_KEY = "no_key"
    BAD_SETTING = "bad_setting"
    #: 401 "Unauthorized": a wrong, revoked or invalidated key.
    UNAUTHORIZED = "unauthorized"
    #: 401 "Missing scopes: ads.third_party_events.write": not a Conversions API key.
    MISSING_SCOPE = "missing_scope"
    #: 403 "unknown pid": a wrong Pixel ID, or a key of another ad account.
    UNKNOWN_PIXEL = "unknown_pixel"
    #: 503 "Authentication backend failure": OpenAI's outage, not the key.
    AUTH_OUTAGE = "auth_outage"
    #: Another 5xx, or 408.
    TEMPORARY = "temporary"
    RATE_LIMITED = "rate_limited"
    #: 400, 413 or 422 naming the test event: the test event itself was refused.
    EVENT_REFUSED = "event_refused"
    #: 400, 413 or 422 naming no event (a lost ``pid``): the request was refused, as
    #: delivery finds it when one-event requests are refused that way.
    REQUEST_REFUSED = "request_refused"
    NO_RESPONSE = "no_response"
    #: A redirect, 404 and the like: the endpoint is not the events API.
    WRONG_ENDPOINT = "wrong_endpoint"


@dataclass(frozen=True, slots=True)
class VerifyResult(RoundTrip):
    """What :func:`verify` found: its message is the API's error, or why no answer came.

    No field ever holds the API key.
    """

    ok: bool
    diagnosis: Diagnosis
    #: One sentence: what happened.
    summary: str
    #: What to do about it.
    advice: str
    pixel_id: str | None
    #: ``OPENAI_CAPI_ENDPOINT`` without credentials, query or fragment.
    endpoint: str
    #: The setting the key came from (never the key): "" when there is none.
    key_setting: str = ""
    duration_ms: int = 0
    #: The test event's id: "" when no request was made.
    event_id: str = ""
    #: Things worth knowing whatever the outcome (kill switch, a paused pixel).
    notes: tuple[str, ...] = field(default=())


def verify(pixel_id: str | None = None, *, using: str = "default") -> VerifyResult:
    """Send one ``validate_only`` test event to *pixel_id* (default: ``OPENAI_CAPI_PIXEL_ID``).

    Nothing is recorded by OpenAI, and nothing is stored here; the one write is lifting
    the pixel's pause when the check passes, since it proves what the pause waits for.
    """
    notes = _setting_notes()
    # What every result tells, filled in as the check gets further.
    result = functools.partial(
        VerifyResult,
        ok=False,
        endpoint=shown_endpoint(conf.OPENAI_CAPI_ENDPOINT),
        notes=notes,
    )
    try:
        pixel = pixel_id or conf.default_pixel_id()
    except CapiConfigurationError as exc:
        return result(
            diagnosis=Diagnosis.NO_PIXEL,
            summary="No pixel to check: OPENAI_CAPI_PIXEL_ID is not set.",
            advice=f"{exc} Or name the pixel to check (--pixel).",
            pixel_id=None,
        )
    result = functools.partial(result, pixel_id=pixel)
    try:
        conf.api_key_for(pixel)
    except UnusableApiKeyError as exc:
        # The worker refuses to send with it for the same reason (one rule, in conf).
        return result(
            diagnosis=Diagnosis.BAD_SETTING,
            summary=f"{exc.setting} cannot be sent as it is.",
            advice=str(exc),
            key_setting=exc.setting,
        )
    except CapiConfigurationError as exc:
        return result(
            diagnosis=Diagnosis.NO_KEY,
            summary=f"No Conversions API key for pixel {pixel!r}.",
            advice=str(exc),
        )
    setting = conf.key_setting(pixel)
    result = functools.partial(result, key_setting=setting)
    try:
        event_id, answer = send_test_event(pixel)
    except EventValidationError as exc:
        # The only part of a request the settings can break: integration_source.
        return result(
            diagnosis=Diagnosis.BAD_SETTING,
            summary="OPENAI_CAPI_INTEGRATION_SOURCE cannot be sent as it is.",
            advice=f"{exc}. Set it to 1 to 64 letters, digits, '.', '_' or '-' "
            + "starting with a letter or digit, or to None.",
        )
    diagnosis, summary, advice = diagnose(answer, pixel=pixel, key_setting=setting)
    works = diagnosis is Diagnosis.WORKS
    return result(
        ok=works,
        diagnosis=diagnosis,
        summary=summary,
        advice=advice,
        http_status=answer.status,
        request_id=answer.request_id,
        message=answer.message,
        duration_ms=answer.duration_ms,
        event_id=event_id,
        notes=notes
        + (_lift_pause(pixel, using) if works else _pause_note(pixel, using)),
    )


#: verify's diagnosis of each cause an answer can have.
_DIAGNOSIS = {
    Cause.ACCEPTED: Diagnosis.WORKS,
    Cause.EVENTS_REFUSED: Diagnosis.EVENT_REFUSED,
    Cause.REQUEST_REFUSED: Diagnosis.REQUEST_REFUSED,
    Cause.MISSING_SCOPE: Diagnosis.MISSING_SCOPE,
    Cause.UNAUTHORIZED: Diagnosis.UNAUTHORIZED,
    Cause.UNKNOWN_PIXEL: Diagnosis.UNKNOWN_PIXEL,
    Cause.AUTH_OUTAGE: Diagnosis.AUTH_OUTAGE,
    Cause.SERVER_ERROR: Diagnosis.TEMPORARY,
    Cause.RATE_LIMITED: Diagnosis.RATE_LIMITED,
    Cause.NO_RESPONSE: Diagnosis.NO_RESPONSE,
    Cause.WRONG_ENDPOINT: Diagnosis.WRONG_ENDPOINT,
}


def diagnose(
    answer: Answer, *, pixel: str, key_setting: str
) -> tuple[Diagnosis, str, str]:
    """The diagnosis of a test request's *answer*, with its summary and advice."""
    explanation = explain(answer, pixel=pixel, key_setting=key_setting)
    return _DIAGNOSIS[explanation.cause], explanation.summary, explanation.advice


def shown_endpoint(url: str) -> str:
    """*url* as it may be printed: scheme, host, port and path only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path


def _setting_notes() -> tuple[str, ...]:
    notes = []
    if not conf.OPENAI_CAPI_SEND_ENABLED:
        notes.append(
            "OPENAI_CAPI_SEND_ENABLED is False: events are recorded but nothing is "
            + "sent until it is True (this check runs anyway)."
        )
    if conf.OPENAI_CAPI_VALIDATE_ONLY:
        notes.append(
            "OPENAI_CAPI_VALIDATE_ONLY is True: deliveries are only validated, and "
            + "OpenAI records none of them."
        )
    return tuple(notes)


def _current_pause(
    pixel_id: str, using: str, *, waiting: bool = True
) -> PixelPause | None:
    """The pixel's pause; with *waiting*, only while its wait lasts."""
    rows = PixelPause.objects.using(using).filter(pixel_id=pixel_id)
    if waiting:
        rows = rows.filter(paused_until__gt=timezone.now())
    return rows.first()


def _pause_parts(pause: PixelPause) -> tuple[str, str]:
    """Why the pixel was paused, and until when (in UTC, as the status command says)."""
    if pause.http_status:
        why = f"HTTP {pause.http_status}"
    else:
        # The kind's words ("network: no response"), not its stored value.
        why = ErrorKind.words(pause.reason) if pause.reason else "a failed request"
    until = pause.paused_until.astimezone(UTC)
    return why, f"{until:%Y-%m-%d %H:%M:%S} UTC"


def _describe_pause(pause: PixelPause) -> str:
    why, until = _pause_parts(pause)
    return f"delivery to pixel {pause.pixel_id!r} is paused until {until} after {why}"


def _lift_pause(pixel_id: str, using: str) -> tuple[str, ...]:
    # Whether or not its wait is over: the pixel stays paused (and reported so) until
    # a request succeeds, and this check is one.
    pause = _current_pause(pixel_id, using, waiting=False)
    if pause is None:
        return ()
    pauses.resume(pixel_id, using=using)
    why, until = _pause_parts(pause)
    # Said in the past tense: by the time this is read the pause is gone.
    return (
        f"Delivery to pixel {pixel_id!r} had been paused after {why} (until {until}); "
        + "the check shows the pixel works now, so the pause is lifted and its "
        + "events go out with the next delivery.",
    )


def _pause_note(pixel_id: str, using: str) -> tuple[str, ...]:
    pause = _current_pause(pixel_id, using)
    if pause is None:
        return ()
    return (f"Also, {_describe_pause(pause)}.",)
