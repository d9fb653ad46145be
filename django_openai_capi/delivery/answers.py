"""What an answer from the Conversions API means, decided in one place.

:func:`ask` makes one request and never raises for what the API or the network did: it
returns an :class:`Answer`. The answer's :attr:`~Answer.cause` (its diagnosis) fixes
everything else: what delivery does next (:attr:`~Answer.verdict`), the ``ErrorKind``
its events are filed under and the ``DeliveryBatch.Outcome`` its request row records.
The words for people live in ``advice.py``.

Nothing here writes a row: the read-only tools (verify, validate) use it as delivery does.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from django_openai_capi.api.events import encode_request
from django_openai_capi.api.responses import ApiErrorBody, parse_error
from django_openai_capi.client import ApiResponse, post_events
from django_openai_capi.conf import conf
from django_openai_capi.exceptions import TransportError
from django_openai_capi.models import DeliveryBatch, ErrorKind
from django_openai_capi.redaction import describe_exception, format_traceback, redact

logger = logging.getLogger("django_openai_capi.delivery")

_Outcome = DeliveryBatch.Outcome


class Verdict(enum.Enum):
    """What delivery does with an answer."""

    #: The API took every event of the request.
    ACCEPTED = "accepted"
    #: The API refused the request for what it carried; one bad event refuses the whole
    #: batch, so it is isolated and the rest is sent (``isolation.py``).
    REJECTED = "rejected"
    #: Worth another try later, with backoff (``Retry-After`` as a floor).
    RETRY = "retry"
    #: Not the events' fault and not going away by itself: the pixel pauses and its
    #: events wait without using attempts.
    HALT = "halt"


class Cause(enum.Enum):
    """Why the API answered as it did: the diagnosis of one answer."""

    ACCEPTED = "accepted"
    #: 400, 413 or 422 in the API's words (or a 413 in any): events were refused, named
    #: by the error (:meth:`Answer.blamed`) or for isolation to find.
    EVENTS_REFUSED = "events_refused"
    #: Refused naming only the request's own fields (a lost ``pid``, the integration
    #: source): no event is at fault, and lone events would be refused the same way.
    REQUEST_REFUSED = "request_refused"
    #: A 400 or 422 without the API's error envelope (a proxy's or firewall's page): it
    #: says nothing against any event, and failing them one by one would dead-letter a
    #: whole backlog over an infrastructure fault. Retried.
    NOT_THE_API = "not_the_api"
    #: 401 "Missing scopes: ads.third_party_events.write": not a Conversions API key.
    MISSING_SCOPE = "missing_scope"
    #: 401 "Unauthorized": a wrong, revoked or invalidated key.
    UNAUTHORIZED = "unauthorized"
    #: 403 "unknown pid": a wrong Pixel ID, or a key of another ad account.
    UNKNOWN_PIXEL = "unknown_pixel"
    #: A 5xx "Authentication backend failure": OpenAI's outage, not the key.
    AUTH_OUTAGE = "auth_outage"
    #: Another 5xx, or 408.
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    #: No answer at all: timeout, refused or dropped connection, or a bug before one.
    NO_RESPONSE = "no_response"
    #: A redirect, 404 and the like: the endpoint is not the events API.
    WRONG_ENDPOINT = "wrong_endpoint"


#: What each cause makes delivery do, how its events are filed, and what its request's
#: row records.
_MEANING: dict[Cause, tuple[Verdict, ErrorKind | None, _Outcome]] = {
    Cause.ACCEPTED: (Verdict.ACCEPTED, None, _Outcome.ACCEPTED),
    Cause.EVENTS_REFUSED: (Verdict.REJECTED, ErrorKind.REJECTED, _Outcome.REJECTED),
    Cause.REQUEST_REFUSED: (
        Verdict.REJECTED,
        ErrorKind.REQUEST,
        _Outcome.REQUEST_REFUSED,
    ),
    Cause.NOT_THE_API: (Verdict.RETRY, ErrorKind.REJECTED, _Outcome.REJECTED),
    Cause.MISSING_SCOPE: (Verdict.HALT, ErrorKind.AUTH, _Outcome.AUTH_ERROR),
    Cause.UNAUTHORIZED: (Verdict.HALT, ErrorKind.AUTH, _Outcome.AUTH_ERROR),
    Cause.UNKNOWN_PIXEL: (Verdict.HALT, ErrorKind.AUTH, _Outcome.AUTH_ERROR),
    Cause.AUTH_OUTAGE: (Verdict.RETRY, ErrorKind.SERVER, _Outcome.RETRY),
    Cause.SERVER_ERROR: (Verdict.RETRY, ErrorKind.SERVER, _Outcome.RETRY),
    Cause.RATE_LIMITED: (
        Verdict.RETRY,
        ErrorKind.RATE_LIMITED,
        _Outcome.RATE_LIMITED,
    ),
    Cause.NO_RESPONSE: (Verdict.RETRY, ErrorKind.NETWORK, _Outcome.NETWORK_ERROR),
    Cause.WRONG_ENDPOINT: (Verdict.HALT, ErrorKind.UNEXPECTED, _Outcome.UNEXPECTED),
}

#: The kind of error a failed request's outcome files it under (the status page's
#: grouping): what delivery decided when it recorded the request.
OUTCOME_KIND: dict[str, ErrorKind] = {
    outcome: kind for _, kind, outcome in _MEANING.values() if kind is not None
}

_REFUSED = frozenset({400, 413, 422})

#: "403: ", "HTTP 503 - ", "HTTP 503 " at the start of a message, or "502 " before a
#: reason phrase ("502 Bad Gateway"): not "413 " before other words ("413 events are
#: too many"), where the number is the message's own.
_STATUS_PREFIX = re.compile(
    r"\s*(?P<http>(?i:HTTP)\s*)?(?P<status>\d{3})"
    r"(?:\s*[:\-]\s*|\s+(?(http)|(?=[A-Z])))"
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got back."""

    #: ``None``: no response at all (timeout, refused or dropped connection).
    status: int | None
    #: ``x-request-id``, cleaned: what OpenAI support asks for.
    request_id: str = ""
    #: ``Retry-After`` in seconds: the earliest the next try may come.
    retry_after: float | None = None
    error: ApiErrorBody | None = None
    #: A redacted description of what went wrong; empty for a 2xx.
    text: str = ""
    duration_ms: int = 0
    #: When the request was made.
    started: datetime = field(default_factory=timezone.now)

    @property
    def cause(self) -> Cause:
        status = self.status
        lowered = self.text.lower()
        if status is None:
            return Cause.NO_RESPONSE
        if 200 <= status < 300:
            return Cause.ACCEPTED
        if status in _REFUSED:
            if self.error is None:
                return Cause.EVENTS_REFUSED if status == 413 else Cause.NOT_THE_API
            if self.error.names_the_request():
                return Cause.REQUEST_REFUSED
            return Cause.EVENTS_REFUSED
        if status == 401:
            scope = "missing scope" in lowered or "scopes:" in lowered
            return Cause.MISSING_SCOPE if scope else Cause.UNAUTHORIZED
        if status == 403:
            return Cause.UNKNOWN_PIXEL
        if status == 429:
            return Cause.RATE_LIMITED
        if status >= 500 and "authentication backend" in lowered:
            return Cause.AUTH_OUTAGE
        if status == 408 or status >= 500:
            return Cause.SERVER_ERROR
        return Cause.WRONG_ENDPOINT

    @property
    def verdict(self) -> Verdict:
        return _MEANING[self.cause][0]

    @property
    def accepted(self) -> bool:
        return self.verdict is Verdict.ACCEPTED

    @property
    def refused(self) -> bool:
        """Refused for what it carried: the events are judged one by one."""
        return self.verdict is Verdict.REJECTED

    @property
    def retry(self) -> bool:
        """Worth another try after a wait, at least :attr:`retry_after`."""
        return self.verdict is Verdict.RETRY

    @property
    def halts(self) -> bool:
        """The pixel, not its events, is at fault: it pauses, and they wait."""
        return self.verdict is Verdict.HALT

    @property
    def request_fault(self) -> bool:
        """The error itself points at the request, not at any event."""
        return self.cause is Cause.REQUEST_REFUSED

    def blamed(self, size: int) -> set[int]:
        """The events of a request of *size* events that the error names, by index.

        An index past the request's end names nothing: the answer is not about what
        was sent.
        """
        if self.error is None or not self.refused:
            return set()
        return {index for index in self.error.event_indexes() if index < size}

    @property
    def kind(self) -> ErrorKind | None:
        """How a failure is filed on its events and the pixel; ``None`` if accepted."""
        return _MEANING[self.cause][1]

    @property
    def outcome(self) -> _Outcome:
        """The ``DeliveryBatch.outcome`` of the request."""
        return _MEANING[self.cause][2]

    @property
    def message(self) -> str:
        """The API's error message, or why no answer came; empty for a success.

        Without a status it starts with ("403: unknown pid" is "unknown pid"): it is
        shown after "HTTP 403: " or beside the status.
        """
        if self.error is not None:
            return _without_status(self.status, redact(self.error.describe()))
        # text is "HTTP 418: <body>" or "No response: <why>".
        return self.text.partition(": ")[2] or self.text

    def quoting_request_id(self, message: str) -> str:
        """*message*, with the request id support asks for, when there is one."""
        return f"{message} (request {self.request_id})" if self.request_id else message


def ask(pixel_id: str, payloads: Sequence[str], *, validate_only: bool) -> Answer:
    """One request carrying *payloads*; never raises for what the API or network did.

    Raises ``EventValidationError`` only for a request the settings make unsendable
    (``OPENAI_CAPI_INTEGRATION_SOURCE``), before anything is sent.
    """
    started = timezone.now()
    body = encode_request(
        list(payloads),
        validate_only=validate_only,
        integration_source=conf.OPENAI_CAPI_INTEGRATION_SOURCE,
    )
    try:
        response = post_events(pixel_id, body)
    except TransportError as exc:
        return Answer(
            status=None,
            text=f"No response: {exc}",
            duration_ms=exc.duration_ms,
            started=started,
        )
    except Exception as exc:
        # Whatever else goes wrong before an answer (a header the key cannot be
        # encoded into, a bug) is "no answer": the batch is retried, never stranded.
        logger.error("Sending to pixel %s failed:\n%s", pixel_id, format_traceback(exc))
        text = f"No response: {describe_exception(exc)}"
        return Answer(status=None, text=text, started=started)
    return _answer_of(response, started=started)


def _without_status(status: int | None, message: str) -> str:
    """*message* without a leading copy of *status*, so that the status is said once.

    The API words some errors "403: unknown pid" and "503: Authentication backend
    failure", and a proxy's page may read "502 Bad Gateway"; after "HTTP 403: " the
    status would be said twice. A message that is only the status is kept.
    """
    match = _STATUS_PREFIX.match(message)
    if status is None or match is None or match["status"] != str(status):
        return message
    return message[match.end() :] or message


def _answer_of(response: ApiResponse, *, started: datetime) -> Answer:
    """The :class:`Answer` of an HTTP *response* to a request made at *started*."""
    if response.ok:
        return Answer(
            status=response.status,
            request_id=response.request_id,
            duration_ms=response.duration_ms,
            started=started,
        )
    error = parse_error(response.body)
    # Redacted before it is cut: a key echoed across the cut would keep its prefix.
    text = (
        redact(error.describe())
        if error is not None
        else redact(response.text(), limit=500) or "(empty body)"
    )
    return Answer(
        status=response.status,
        request_id=response.request_id,
        retry_after=response.retry_after,
        error=error,
        text=redact(
            f"HTTP {response.status}: {_without_status(response.status, text)}"
        ),
        duration_ms=response.duration_ms,
        started=started,
    )
