"""The requests that change nothing: ``validate_only`` round trips, and what each told.

The API validates a ``validate_only`` request as it would a real one and records
nothing. Two tools ask it that way, and both requests are made here: validation sends
stored events and pinpoints the refused ones with the isolation delivery uses
(:class:`PixelCheck`), verification sends one synthetic event to see whether the key
and pixel work (:func:`send_test_event`). Nothing here claims, updates or records
anything: an event being checked can be claimed and sent by a worker at the same
moment, and neither notices the other.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django_openai_capi.api import build_event, encode_event
from django_openai_capi.conf import conf
from django_openai_capi.delivery.advice import what_to_do
from django_openai_capi.delivery.answers import Answer, ask
from django_openai_capi.delivery.isolation import Accepted, Refused, isolate
from django_openai_capi.delivery.policy import EXPIRY_MARGIN
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.models import ConversionEvent
from django_openai_capi.redaction import redact

NOT_BUILT = "Not built yet: its payload is built the next time delivery runs."
CLOSING_WINDOW = (
    "Too close to the end of its 7-day window: delivery expires it instead of "
    + "sending it, and the API would refuse it."
)
OUT_OF_BUDGET = (
    "The API refused this group more often than one check may ask while isolating "
    + "the bad events; check these events in smaller groups."
)
#: The test event's type: a ``contents`` event that needs no data beyond its type.
TEST_EVENT_TYPE = "page_viewed"
#: Its page: a reserved domain (RFC 2606), so the event cannot pass for a real visit.
TEST_EVENT_URL = "https://example.com/openai-capi-verify"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundTrip:
    """What a ``validate_only`` request told, as a person and OpenAI support read it.

    No field ever holds the API key.
    """

    #: ``None`` when no request was made or no answer came back.
    http_status: int | None = None
    #: ``x-request-id``: what support asks for.
    request_id: str = ""
    #: What the API said (redacted), or why nothing was asked; "" when all is well.
    message: str = ""


class Check(enum.Enum):
    """What the API said about one event."""

    #: Accepted with ``validate_only``: sent for real, it would be accepted too.
    OK = "ok"
    #: Refused: sent for real, it would fail (or expire, when ``too_old``).
    REFUSED = "refused"
    #: Not asked about: no key, the API failed, or the event cannot be sent at all.
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class EventVerdict(RoundTrip):
    """The result of checking one event.

    Its message is the API's refusal of the event, or why it was not checked.
    """

    pk: int
    pixel_id: str
    event_type: str
    event_id: str
    check: Check
    #: Refused for its timestamp: delivery would expire it rather than fail it.
    too_old: bool = False

    @property
    def ok(self) -> bool:
        return self.check is Check.OK


def send_test_event(pixel_id: str) -> tuple[str, Answer]:
    """Send one synthetic event to *pixel_id* with ``validate_only``: its id, the answer.

    Raises ``EventValidationError`` when the settings make the request unsendable
    (``OPENAI_CAPI_INTEGRATION_SOURCE``), before anything is sent.
    """
    event_id = f"openai-capi-verify-{uuid.uuid4()}"
    event = build_event(
        TEST_EVENT_TYPE,
        event_id=event_id,
        action_source="web",
        source_url=TEST_EVENT_URL,
    )
    return event_id, ask(pixel_id, [encode_event(event)], validate_only=True)


@dataclass(frozen=True, slots=True)
class _Postable:
    event: ConversionEvent
    payload: str


class PixelCheck:
    """Checks the events of one pixel, request after request, until the API fails."""

    def __init__(self, pixel_id: str, size: int, now: datetime) -> None:
        self.pixel_id = pixel_id
        self.size = size
        self.closing = now + EXPIRY_MARGIN
        #: Why no more requests are made for the pixel, as its verdicts tell it.
        self.blocked: RoundTrip | None = None
        try:
            conf.api_key_for(pixel_id)
        except CapiConfigurationError as exc:
            self.blocked = RoundTrip(message=f"Not checked: {exc}")

    def events(self, events: Sequence[ConversionEvent]) -> Iterator[EventVerdict]:
        """One verdict per event, in order, the events of a request at a time."""
        postable: list[_Postable] = []
        for event in events:
            if event.payload is None:
                yield _verdict(event, Check.NOT_CHECKED, RoundTrip(message=NOT_BUILT))
            elif event.expires_at <= self.closing:
                # One such event would make the API refuse its whole request.
                yield _verdict(
                    event, Check.NOT_CHECKED, RoundTrip(message=CLOSING_WINDOW)
                )
            else:
                postable.append(_Postable(event, event.payload))
        for start in range(0, len(postable), self.size):
            yield from self._request(postable[start : start + self.size])

    def _request(self, events: Sequence[_Postable]) -> Iterator[EventVerdict]:
        if self.blocked is not None:
            # After a refused key or an outage, more requests would only get the same.
            yield from _not_checked(events, self.blocked)
            return

        def send(group: Sequence[_Postable]) -> Answer:
            payloads = [item.payload for item in group]
            return ask(self.pixel_id, payloads, validate_only=True)

        for step in isolate(events, send):
            if isinstance(step, Accepted):
                accepted = _told(step.answer)
                for item in step.events:
                    yield _verdict(item.event, Check.OK, accepted)
            elif isinstance(step, Refused):
                refused = _told(step.answer, redact(step.message))
                yield _verdict(
                    step.event.event, Check.REFUSED, refused, too_old=step.too_old
                )
            elif step.answer is None:
                # Only this group ran out of requests: the next one gets a fresh budget.
                yield from _not_checked(step.events, RoundTrip(message=OUT_OF_BUDGET))
            else:
                self.blocked = _failed(step.answer, request_fault=step.request_fault)
                yield from _not_checked(step.events, self.blocked)


def _told(answer: Answer, message: str = "") -> RoundTrip:
    return RoundTrip(
        http_status=answer.status, request_id=answer.request_id, message=message
    )


def _failed(answer: Answer, *, request_fault: bool) -> RoundTrip:
    # A stop for a refusal is always a request fault; a retry is temporary.
    advice = what_to_do(answer, request_fault=request_fault)
    return _told(
        answer, f"Not checked: {answer.quoting_request_id(answer.text)}. {advice}"
    )


def _not_checked(events: Iterable[_Postable], why: RoundTrip) -> Iterator[EventVerdict]:
    for item in events:
        yield _verdict(item.event, Check.NOT_CHECKED, why)


def _verdict(
    event: ConversionEvent, check: Check, told: RoundTrip, *, too_old: bool = False
) -> EventVerdict:
    return EventVerdict(
        pk=event.pk,
        pixel_id=event.pixel_id,
        event_type=event.event_type,
        event_id=event.event_id,
        check=check,
        too_old=too_old,
        http_status=told.http_status,
        request_id=told.request_id,
        message=told.message,
    )
