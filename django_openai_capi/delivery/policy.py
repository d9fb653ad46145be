"""When to try again: the wait after a failure, and the margin before a window closes.

Functions of the settings and the clock, so the whole retry timing can be read (and
tested) in one place. What an answer means is ``answers.py``'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.db.models import Case, DateTimeField, DurationField, F, Func, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from django_openai_capi.conf import conf


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


def next_attempt(attempts: Iterable[int], *, retry_after: float | None = None) -> Func:
    """When events retried now come due again, as one SQL expression for a batch.

    The wait depends only on an event's attempt count (:func:`retry_delay`), and a
    batch holds few distinct counts: one ``CASE`` covers it. Never past the event's
    window: at the latest it comes due as the window closes, and is expired then
    instead of waiting on unseen.
    """
    now = timezone.now()
    when = Case(
        *(
            When(
                attempts=count,
                then=Value(now + retry_delay(count, retry_after=retry_after)),
            )
            for count in attempts
        ),
        output_field=DateTimeField(),
    )
    latest = F("expires_at") - Value(EXPIRY_MARGIN, output_field=DurationField())
    return Greatest(Least(when, latest), Value(now))
