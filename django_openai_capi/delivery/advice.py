"""What to tell a person about an answer: the fix, in the words of Ads Manager.

Two wordings of the same diagnosis (``Answer.cause``): :func:`what_to_do`, the short
advice delivery logs and the commands show when a pixel is held back, and
:func:`explain`, the fuller summary and advice of a one-event test request (verify),
which can name the setting the key came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django_openai_capi.conf import conf, is_loopback_host
from django_openai_capi.delivery.answers import Answer, Cause

REAL_ENDPOINT = "https://bzr.openai.com/v1/events"
STATUS_PAGE = "https://status.openai.com"
SUPPORT = "ads-support@openai.com"

_HELD: dict[Cause, str] = {
    Cause.MISSING_SCOPE: (
        "The key lacks the scope ads.third_party_events.write: it is an Advertiser "
        + "API key or a general OpenAI key. Create a Conversions API key in Ads "
        + "Manager → Conversions → Manage conversion keys and set it as "
        + "OPENAI_CAPI_API_KEY."
    ),
    Cause.UNAUTHORIZED: (
        "Check OPENAI_CAPI_API_KEY: it must be a Conversions API key (Ads Manager "
        + "→ Conversions → Manage conversion keys, scope "
        + "ads.third_party_events.write), not a pixel or Advertiser API key. If it "
        + "is one, it may have been revoked: create a new key and deploy it."
    ),
    Cause.UNKNOWN_PIXEL: (
        "Check the Pixel ID (OPENAI_CAPI_PIXEL_ID or the conversion's pixel_id): "
        + "the API does not know it for this key. Copy it from Ads Manager → "
        + "Conversions, and use a key of the ad account that owns the pixel "
        + "(OPENAI_CAPI_PIXEL_API_KEYS)."
    ),
    Cause.WRONG_ENDPOINT: (
        "Check OPENAI_CAPI_ENDPOINT: it should be https://bzr.openai.com/v1/events "
        + "(or your fake's URL in tests)."
    ),
}

TEMPORARY = "This is usually temporary: check again later."
EVENTS_JUDGED = (
    "The API judged the events one by one: each refused event's error says what to "
    + "fix in the conversion that builds it."
)


def what_to_do(answer: Answer, *, request_fault: bool = False) -> str:
    """The advice for a failed *answer*, as delivery logs it and the commands show it.

    *request_fault*: isolation found that the API refuses the request whatever it
    carries (``isolation.Stopped.request_fault``), which one answer may not show.
    """
    if answer.cause in _HELD:
        return _HELD[answer.cause]
    if request_fault or answer.request_fault:
        return _request_fault_advice(answer.text)
    return EVENTS_JUDGED if answer.refused else TEMPORARY


def _request_fault_advice(message: str) -> str:
    lowered = message.lower()
    if "'pid'" in lowered or '"pid"' in lowered:
        cause = (
            "The request reached the API without its pid query parameter. Check "
            + "OPENAI_CAPI_ENDPOINT (https://bzr.openai.com/v1/events, with no query "
            + "string of its own: the app adds ?pid=) and any proxy or gateway between "
            + "this server and the API that strips query strings."
        )
    elif "integration_source" in lowered:
        cause = "Check OPENAI_CAPI_INTEGRATION_SOURCE, or set it to None."
    else:
        cause = (
            "Check OPENAI_CAPI_ENDPOINT and any proxy between this server and the "
            + f"API; if they are right, report it to {SUPPORT} with the request id."
        )
    return (
        "Not the events' fault: the API refuses these requests whatever they carry, "
        + "naming no event in them (its error points at the request itself, or lone "
        + f"events were refused too and none passed). {cause} Run manage.py "
        + "openai_capi_verify once it is fixed: a passing check resumes delivery at "
        + "once."
    )


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


@dataclass(frozen=True, slots=True)
class Explanation:
    """What the answer to a one-event test request says, for a person."""

    #: The answer's cause, as far as one event can tell: an event refused without
    #: being named is the request's fault (the test event passes the app's
    #: validation), and a page not the API's refusing it is the event's.
    cause: Cause
    #: One sentence: what happened.
    summary: str
    #: What to do about it.
    advice: str


def explain(answer: Answer, *, pixel: str, key_setting: str) -> Explanation:
    """The summary and advice for the answer to a one-event test request (verify).

    *key_setting* names the setting the key came from (never the key).
    """
    cause = answer.cause
    if cause is Cause.NOT_THE_API:
        cause = Cause.EVENTS_REFUSED
    elif answer.refused and not answer.blamed(1):
        # The test event passes the app's validation; delivery draws the same
        # conclusion from a one-event request refused this way.
        cause = Cause.REQUEST_REFUSED
    summary, advice = _words(answer, cause, pixel, key_setting)
    return Explanation(cause, summary, advice)


def _words(
    answer: Answer, cause: Cause, pixel: str, key_setting: str
) -> tuple[str, str]:
    status, message = answer.status, answer.message
    quote = f"quote the request id {answer.request_id}" if answer.request_id else ""
    if cause is Cause.NO_RESPONSE:
        return _no_response(message)
    if cause is Cause.ACCEPTED:
        return (
            "The key and pixel work: the API accepted a validate_only test event.",
            "Nothing to fix. validate_only requests do not appear in event monitoring, "
            + "so do not look for this test event there.",
        )
    if cause is Cause.MISSING_SCOPE:
        return (
            "The key lacks the scope ads.third_party_events.write (HTTP 401).",
            f"The key in {key_setting} is not a Conversions API key: most likely the "
            + "Advertiser API key, which looks the same (sk-svcacct-…). Create a "
            + "Conversions API key in Ads Manager → Conversions → Manage conversion "
            + f"keys, put it in {key_setting}, and run this check again. {_EVENTS_WAIT}",
        )
    if cause is Cause.UNAUTHORIZED:
        return (
            f"The API refused the key (HTTP 401: {message}).",
            f"The key in {key_setting} is wrong, revoked or no longer valid. "
            + f"{_GET_A_KEY} If this key worked before and stopped after an OpenAI "
            + 'incident (such as a spell of 503 "Authentication backend failure"), '
            + "create a new Conversions API key, deploy it and run this check again: "
            + f"keys have had to be regenerated after such an incident. {_EVENTS_WAIT}",
        )
    if cause is Cause.UNKNOWN_PIXEL:
        return (
            f"The API does not accept pixel {pixel!r} with this key (HTTP 403: {message}).",
            "Check the Pixel ID (OPENAI_CAPI_PIXEL_ID, a conversion's pixel_id, or "
            + "--pixel): copy it from Ads Manager → Conversions. If the pixel belongs to "
            + "another ad account than the key, give it that account's key in "
            + f"OPENAI_CAPI_PIXEL_API_KEYS ({{{pixel!r}: <key>}}). {_EVENTS_WAIT}",
        )
    if cause is Cause.AUTH_OUTAGE:
        return (
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
    if cause is Cause.RATE_LIMITED:
        wait = (
            f" (it asked for {answer.retry_after:.0f} s)"
            if answer.retry_after is not None
            else ""
        )
        return (
            f"The API is rate-limiting requests (HTTP 429: {message}).",
            "Temporary: events are kept and retried after the wait the API asks "
            + f"for{wait}. Run this check again in a minute.",
        )
    if cause is Cause.SERVER_ERROR:
        return (
            f"The API failed on its side (HTTP {status}: {message}).",
            "Usually temporary, and not caused by your key or events. "
            + f"{_EVENTS_RETRIED} Run this check again in a few minutes; if it "
            + f"persists, check {STATUS_PAGE}"
            + (f", and {quote} to {SUPPORT}." if quote else "."),
        )
    if cause is Cause.REQUEST_REFUSED:
        return (
            "The API refused the request itself, not the test event "
            + f"(HTTP {status}: {message}).",
            what_to_do(answer, request_fault=True),
        )
    if cause is Cause.WRONG_ENDPOINT:
        return (
            f"Unexpected answer from the endpoint (HTTP {status}: {message}).",
            f"OPENAI_CAPI_ENDPOINT is probably wrong: it should be {REAL_ENDPOINT} (or "
            + "a fake's URL in tests). A redirect hints at http:// instead of https://, a "
            + "404 at a wrong path or host (api.ads.openai.com is the Advertiser API, not "
            + "this one).",
        )
    return _event_refused(status, message, quote)


def _no_response(message: str) -> tuple[str, str]:
    parts = urlsplit(conf.OPENAI_CAPI_ENDPOINT)
    host = parts.hostname or "(no host)"
    if is_loopback_host(host):
        # A fake or a tunnel on this machine: no firewall is in the way, it is not running.
        advice = (
            f"Nothing answers on {host}: if OPENAI_CAPI_ENDPOINT is a local fake of the "
            + "API (python -m django_openai_capi.testing), start it; otherwise correct "
            + f"the setting (the real API is {REAL_ENDPOINT})."
        )
    else:
        scheme = "HTTP" if parts.scheme == "http" else "HTTPS"
        advice = (
            f"Check OPENAI_CAPI_ENDPOINT (the real API is {REAL_ENDPOINT}), and that "
            + f"this machine can reach {host} over {scheme}: DNS, an egress firewall "
            + "or a proxy may be in the way."
        )
    return f"No answer from {host}: {message}", f"{advice} {_EVENTS_RETRIED}"


def _event_refused(status: int | None, message: str, quote: str) -> tuple[str, str]:
    """The test event itself refused (named by the error, or by a page not the API's)."""
    summary = f"The API refused the test event (HTTP {status}: {message})."
    if "timestamp" in message.lower():
        return summary, (
            "The test event is stamped with this machine's clock, which may be wrong: "
            + "check it (NTP). Events recorded with a wrong clock are refused too."
        )
    # (integration_source is the request's, not the event's: see what_to_do.)
    return summary, (
        "So this check cannot tell whether the key and pixel work. The test event "
        + "is built by django-openai-capi and passes its own validation, so this "
        + "is a bug in the app or a change in the API: please report it with the "
        + "message above"
        + (f", and {quote}." if quote else ".")
    )
