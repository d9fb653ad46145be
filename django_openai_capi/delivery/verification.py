"""Does the key work for the pixel? One ``validate_only`` request, and what its answer means.

The API answers a credentials problem, an outage on its side and a bad event with
statuses and messages that are easy to mistake for one another (a 503 "Authentication
backend failure" is OpenAI's outage, not a bad key; after it, a 401 "Unauthorized" on
a key that used to work means the key must be created again). :func:`verify` sends one
synthetic event and turns the answer into a diagnosis a person can act on. The key is
never part of what it returns.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.utils import timezone

from django_openai_capi.api import build_event, encode_event
from django_openai_capi.conf import conf
from django_openai_capi.delivery import pauses
from django_openai_capi.delivery.advice import what_to_do
from django_openai_capi.delivery.answers import Answer, Verdict, ask
from django_openai_capi.exceptions import (
    CapiConfigurationError,
    EventValidationError,
    UnusableApiKeyError,
)
from django_openai_capi.models import PixelPause
from django_openai_capi.redaction import redact

#: The test event's type: a ``contents`` event that needs no data beyond its type.
EVENT_TYPE = "page_viewed"
#: Its page: a reserved domain (RFC 2606), so the event cannot pass for a real visit.
SOURCE_URL = "https://example.com/openai-capi-verify"
REAL_ENDPOINT = "https://bzr.openai.com/v1/events"
STATUS_PAGE = "https://status.openai.com"
SUPPORT = "ads-support@openai.com"
_GET_A_KEY = (
    "It must be a Conversions API key, created in Ads Manager → Conversions → Manage "
    + "conversion keys (scope ads.third_party_events.write): not the pixel's key and "
    + "not the Advertiser API key."
)
_EVENTS_WAIT = (
    "Meanwhile events are kept, without using attempts, and go out once the key "
    + "works (a passing check lifts the pixel's pause at once)."
)
_EVENTS_RETRIED = "Events are kept and retried with backoff meanwhile."


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
class VerifyResult:
    """What :func:`verify` found. No field ever holds the API key."""

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
    #: ``None`` when no request was made or no answer came back.
    status: int | None = None
    request_id: str = ""
    #: The API's error message, or why no answer came; redacted.
    message: str = ""
    duration_ms: int = 0
    event_id: str = ""
    #: Things worth knowing whatever the outcome (kill switch, a paused pixel).
    notes: tuple[str, ...] = field(default=())


def verify(pixel_id: str | None = None, *, using: str = "default") -> VerifyResult:
    """Send one ``validate_only`` test event to *pixel_id* (default: ``OPENAI_CAPI_PIXEL_ID``).

    Nothing is recorded by OpenAI, and nothing is stored here; the one write is lifting
    the pixel's pause when the check passes, since it proves what the pause waits for.
    """
    endpoint = shown_endpoint(conf.OPENAI_CAPI_ENDPOINT)
    notes = _setting_notes()
    try:
        pixel = pixel_id or conf.default_pixel_id()
    except CapiConfigurationError as exc:
        return VerifyResult(
            ok=False,
            diagnosis=Diagnosis.NO_PIXEL,
            summary="No pixel to check: OPENAI_CAPI_PIXEL_ID is not set.",
            advice=f"{exc} Or name the pixel to check (--pixel).",
            pixel_id=None,
            endpoint=endpoint,
            notes=notes,
        )
    setting = conf.key_setting(pixel)
    try:
        conf.api_key_for(pixel)
    except UnusableApiKeyError as exc:
        # The worker refuses to send with it for the same reason (one rule, in conf).
        return VerifyResult(
            ok=False,
            diagnosis=Diagnosis.BAD_SETTING,
            summary=f"{exc.setting} cannot be sent as it is.",
            advice=str(exc),
            pixel_id=pixel,
            endpoint=endpoint,
            key_setting=exc.setting,
            notes=notes,
        )
    except CapiConfigurationError as exc:
        return VerifyResult(
            ok=False,
            diagnosis=Diagnosis.NO_KEY,
            summary=f"No Conversions API key for pixel {pixel!r}.",
            advice=str(exc),
            pixel_id=pixel,
            endpoint=endpoint,
            notes=notes,
        )
    event_id = f"openai-capi-verify-{uuid.uuid4()}"
    event = build_event(
        EVENT_TYPE, event_id=event_id, action_source="web", source_url=SOURCE_URL
    )
    try:
        answer = ask(pixel, [encode_event(event)], validate_only=True)
    except EventValidationError as exc:
        # The only part of a request the settings can break: integration_source.
        return VerifyResult(
            ok=False,
            diagnosis=Diagnosis.BAD_SETTING,
            summary="OPENAI_CAPI_INTEGRATION_SOURCE cannot be sent as it is.",
            advice=f"{exc}. Set it to 1 to 64 letters, digits, '.', '_' or '-' "
            + "starting with a letter or digit, or to None.",
            pixel_id=pixel,
            endpoint=endpoint,
            key_setting=setting,
            notes=notes,
        )
    diagnosis, summary, advice = diagnose(answer, pixel=pixel, key_setting=setting)
    if diagnosis is Diagnosis.WORKS:
        notes += _lift_pause(pixel, using)
    else:
        notes += _pause_note(pixel, using)
    return VerifyResult(
        ok=diagnosis is Diagnosis.WORKS,
        diagnosis=diagnosis,
        summary=summary,
        advice=advice,
        pixel_id=pixel,
        endpoint=endpoint,
        key_setting=setting,
        status=answer.status,
        request_id=answer.request_id,
        message=_message(answer),
        duration_ms=answer.duration_ms,
        event_id=event_id,
        notes=notes,
    )


def diagnose(
    answer: Answer, *, pixel: str, key_setting: str
) -> tuple[Diagnosis, str, str]:
    """The diagnosis of a test request's *answer*, with its summary and advice."""
    status = answer.status
    message = _message(answer)
    lowered = message.lower()
    quote = f"quote the request id {answer.request_id}" if answer.request_id else ""
    if status is None:
        return _no_response(message)
    if 200 <= status < 300:
        return (
            Diagnosis.WORKS,
            "The key and pixel work: the API accepted a validate_only test event.",
            "Nothing to fix. validate_only requests do not appear in event monitoring, "
            + "so do not look for this test event there.",
        )
    if status == 401 and ("missing scope" in lowered or "scopes:" in lowered):
        return (
            Diagnosis.MISSING_SCOPE,
            "The key lacks the scope ads.third_party_events.write (HTTP 401).",
            f"The key in {key_setting} is not a Conversions API key: most likely the "
            + "Advertiser API key, which looks the same (sk-svcacct-…). Create a "
            + "Conversions API key in Ads Manager → Conversions → Manage conversion "
            + f"keys, put it in {key_setting}, and run this check again. {_EVENTS_WAIT}",
        )
    if status == 401:
        return (
            Diagnosis.UNAUTHORIZED,
            f"The API refused the key (HTTP 401: {message}).",
            f"The key in {key_setting} is wrong, revoked or no longer valid. "
            + f"{_GET_A_KEY} If this key worked before and stopped after an OpenAI "
            + 'incident (such as a spell of 503 "Authentication backend failure"), '
            + "create a new Conversions API key, deploy it and run this check again: "
            + f"keys have had to be regenerated after such an incident. {_EVENTS_WAIT}",
        )
    if status == 403:
        return (
            Diagnosis.UNKNOWN_PIXEL,
            f"The API does not accept pixel {pixel!r} with this key (HTTP 403: {message}).",
            "Check the Pixel ID (OPENAI_CAPI_PIXEL_ID, a conversion's pixel_id, or "
            + "--pixel): copy it from Ads Manager → Conversions. If the pixel belongs to "
            + "another ad account than the key, give it that account's key in "
            + f"OPENAI_CAPI_PIXEL_API_KEYS ({{{pixel!r}: <key>}}). {_EVENTS_WAIT}",
        )
    if status >= 500 and "authentication backend" in lowered:
        return (
            Diagnosis.AUTH_OUTAGE,
            f"OpenAI's authentication service is failing (HTTP {status}: {message}).",
            "This is an outage on OpenAI's side, not a problem with your key, pixel "
            + f"or events: there is nothing to change. {_EVENTS_RETRIED} Check "
            + f"{STATUS_PAGE} and run this check again later. If it persists, write to "
            + f"{SUPPORT} with the time and the Pixel ID"
            + (f", and {quote}" if quote else "")
            + " (never the key). Once it is over, if this check reports 401 "
            + '"Unauthorized" for a key that worked before, create a new Conversions '
            + "API key.",
        )
    if status == 429:
        wait = (
            f" (it asked for {answer.retry_after:.0f} s)"
            if answer.retry_after is not None
            else ""
        )
        return (
            Diagnosis.RATE_LIMITED,
            f"The API is rate-limiting requests (HTTP 429: {message}).",
            "Temporary: events are kept and retried after the wait the API asks "
            + f"for{wait}. Run this check again in a minute.",
        )
    if status == 408 or status >= 500:
        return (
            Diagnosis.TEMPORARY,
            f"The API failed on its side (HTTP {status}: {message}).",
            "Usually temporary, and not caused by your key or events. "
            + f"{_EVENTS_RETRIED} Run this check again in a few minutes; if it "
            + f"persists, check {STATUS_PAGE}"
            + (f", and {quote} to {SUPPORT}." if quote else "."),
        )
    if answer.verdict is Verdict.REJECTED and not answer.blamed(1):
        # The test event passes the app's validation; delivery draws the same
        # conclusion from a one-event request refused this way.
        return (
            Diagnosis.REQUEST_REFUSED,
            "The API refused the request itself, not the test event "
            + f"(HTTP {status}: {message}).",
            what_to_do(answer, request_fault=True),
        )
    if status in (400, 413, 422):
        return _event_refused(status, message, quote)
    return (
        Diagnosis.WRONG_ENDPOINT,
        f"Unexpected answer from the endpoint (HTTP {status}: {message}).",
        f"OPENAI_CAPI_ENDPOINT is probably wrong: it should be {REAL_ENDPOINT} (or "
        + "a fake's URL in tests). A redirect hints at http:// instead of https://, a "
        + "404 at a wrong path or host (api.ads.openai.com is the Advertiser API, not "
        + "this one).",
    )


def _no_response(message: str) -> tuple[Diagnosis, str, str]:
    host = urlsplit(conf.OPENAI_CAPI_ENDPOINT).hostname or "(no host)"
    return (
        Diagnosis.NO_RESPONSE,
        f"No answer from {host}: {message}",
        f"Check OPENAI_CAPI_ENDPOINT (the real API is {REAL_ENDPOINT}), and that "
        + f"this machine can reach {host} over HTTPS: DNS, an egress firewall or a "
        + f"proxy may be in the way. {_EVENTS_RETRIED}",
    )


def _event_refused(status: int, message: str, quote: str) -> tuple[Diagnosis, str, str]:
    summary = f"The API refused the test event (HTTP {status}: {message})."
    lowered = message.lower()
    if "timestamp" in lowered:
        advice = (
            "The test event is stamped with this machine's clock, which may be wrong: "
            + "check it (NTP). Events recorded with a wrong clock are refused too."
        )
    else:
        # (integration_source is the request's, not the event's: see what_to_do.)
        advice = (
            "So this check cannot tell whether the key and pixel work. The test event "
            + "is built by django-openai-capi and passes its own validation, so this "
            + "is a bug in the app or a change in the API: please report it with the "
            + "message above"
            + (f", and {quote}." if quote else ".")
        )
    return Diagnosis.EVENT_REFUSED, summary, advice


def _message(answer: Answer) -> str:
    if answer.error is not None:
        return redact(answer.error.describe())
    # "HTTP 418: <body>" or "No response: <why>"; empty for a success.
    return answer.text.partition(": ")[2] or answer.text


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


def _current_pause(pixel_id: str, using: str) -> PixelPause | None:
    return (
        PixelPause.objects.using(using)
        .filter(pixel_id=pixel_id, paused_until__gt=timezone.now())
        .first()
    )


def _describe_pause(pause: PixelPause) -> str:
    why = f"HTTP {pause.http_status}" if pause.http_status else pause.reason
    until = timezone.localtime(pause.paused_until)
    return f"delivery to pixel {pause.pixel_id!r} is paused until {until:%Y-%m-%d %H:%M:%S %Z} after {why}"


def _lift_pause(pixel_id: str, using: str) -> tuple[str, ...]:
    pause = _current_pause(pixel_id, using)
    if pause is None:
        return ()
    pauses.resume(pixel_id, using=using)
    return (
        f"The pause is lifted: {_describe_pause(pause)}, and the check shows the "
        + "pixel works now, so its events go out with the next delivery.",
    )


def _pause_note(pixel_id: str, using: str) -> tuple[str, ...]:
    pause = _current_pause(pixel_id, using)
    if pause is None:
        return ()
    return (f"Also, {_describe_pause(pause)}.",)
