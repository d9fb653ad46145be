"""What an answer means, and how long to wait before the next try.

Pure functions of the response status and the settings, so the whole retry policy can
be read (and tested) in one place.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from datetime import timedelta

from django_openai_capi.conf import conf
from django_openai_capi.models import DeliveryBatch, ErrorKind


class Verdict(enum.Enum):
    #: 2xx: the API took every event of the request.
    ACCEPTED = "accepted"
    #: 400, 413 or 422: the API refused the request for what it carried; one bad event
    #: refuses the whole batch, so it is isolated and the rest is sent.
    REJECTED = "rejected"
    #: Worth another try later: no answer, 408, 429 or a 5xx.
    RETRY = "retry"
    #: Not the events' fault and not going away by itself: a refused key or pixel
    #: (401, 403) or an answer that means the endpoint is wrong (3xx, 404 ...). The
    #: pixel pauses and its events wait without using attempts.
    HALT = "halt"


_REJECTED = frozenset({400, 413, 422})
_AUTH = frozenset({401, 403})


def classify(status: int | None) -> Verdict:
    """The verdict for an HTTP status; ``None`` is "no answer at all"."""
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.ACCEPTED
    if status in _REJECTED:
        return Verdict.REJECTED
    if status in _AUTH:
        return Verdict.HALT
    if status in (408, 429) or status >= 500:
        return Verdict.RETRY
    return Verdict.HALT


def error_kind(status: int | None) -> ErrorKind:
    """How a failed answer is filed on the event and the pixel."""
    if status is None:
        return ErrorKind.NETWORK
    if status in _AUTH:
        return ErrorKind.AUTH
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in _REJECTED:
        return ErrorKind.REJECTED
    if status == 408 or status >= 500:
        return ErrorKind.SERVER
    return ErrorKind.UNEXPECTED


def batch_outcome(status: int | None) -> DeliveryBatch.Outcome:
    """The ``DeliveryBatch.outcome`` of a request that got *status*."""
    verdict = classify(status)
    if verdict is Verdict.ACCEPTED:
        return DeliveryBatch.Outcome.ACCEPTED
    if verdict is Verdict.REJECTED:
        return DeliveryBatch.Outcome.REJECTED
    if status is None:
        return DeliveryBatch.Outcome.NETWORK_ERROR
    if status == 429:
        return DeliveryBatch.Outcome.RATE_LIMITED
    if verdict is Verdict.RETRY:
        return DeliveryBatch.Outcome.RETRY
    if status in _AUTH:
        return DeliveryBatch.Outcome.AUTH_ERROR
    return DeliveryBatch.Outcome.UNEXPECTED


#: The kind of error a failed request's outcome files it under: what delivery decided
#: when it recorded the request, which its HTTP status alone does not say (a 400 can be
#: a refused event or a refused request).
OUTCOME_KIND: dict[str, ErrorKind] = {
    DeliveryBatch.Outcome.REJECTED: ErrorKind.REJECTED,
    DeliveryBatch.Outcome.REQUEST_REFUSED: ErrorKind.REQUEST,
    DeliveryBatch.Outcome.AUTH_ERROR: ErrorKind.AUTH,
    DeliveryBatch.Outcome.RATE_LIMITED: ErrorKind.RATE_LIMITED,
    DeliveryBatch.Outcome.RETRY: ErrorKind.SERVER,
    DeliveryBatch.Outcome.NETWORK_ERROR: ErrorKind.NETWORK,
    DeliveryBatch.Outcome.UNEXPECTED: ErrorKind.UNEXPECTED,
}


def retry_delay(
    failures: int,
    *,
    retry_after: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> timedelta:
    """The wait after the *failures*-th consecutive failure (1 for the first).

    ``RETRY_BACKOFF`` doubling per failure up to ``RETRY_BACKOFF_MAX``, then "equal
    jitter": a random point in the upper half, so that events that failed together do
    not all come back at the same moment. ``Retry-After`` is a floor, capped at the
    maximum so a hostile or broken header cannot park events for weeks.
    """
    base = conf.OPENAI_CAPI_RETRY_BACKOFF
    cap = conf.OPENAI_CAPI_RETRY_BACKOFF_MAX
    # min() on the exponent first: 2 ** 10_000 would overflow a float.
    delay = min(cap, base * 2.0 ** min(max(failures, 1) - 1, 64))
    delay *= 0.5 + jitter() / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return timedelta(seconds=delay)


#: An event this close to the end of its 7-day window is expired rather than sent: it
#: could reach the API after the window closed, and one stale event refuses the batch.
EXPIRY_MARGIN = timedelta(minutes=5)


def isolation_budget(size: int) -> int:
    """Requests one claim may make while isolating bad events.

    Bisecting one bad event out of *size* costs about 2·log2(size) requests, plus
    one for the first event sent alone while no event has passed (to tell a refused
    request from a bad event: ``isolation.isolate``). Among 1,000 events the budget
    is 48: one unnamed bad event takes at most 22 requests, two at most 40 (measured
    over every position, and 5,000 random pairs). When the API names the bad event
    (it normally does), each one costs a single extra request.
    """
    return 4 * math.ceil(math.log2(size + 1)) + 8
