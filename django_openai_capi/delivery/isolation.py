"""Finding the bad events of a rejected batch, so that the good ones still go through.

The API refuses a whole batch for one bad event. Its error normally names the event
(``param: "events[3]"``): that event is set aside and the rest is sent again, one extra
request per bad event. When the error names none, the batch is split in halves until
the bad events stand alone (about 2·log2(n) requests for one bad event in n). Either
way a budget bounds the requests one claim can make.

A refusal can also be the request's fault, not its events': the API refuses a request
that lost its ``pid`` whatever events it carries, naming none. Before halving anything,
lone events tell the two apart (see :func:`isolate`), so that such a refusal fails no
event and costs at most three requests; one, when the error itself points at the
request (the lost ``pid``'s ``('query', 'pid')``).

This module only decides what to send next; the caller posts and records. That keeps
one algorithm for delivery, which records outcomes, and for validation, which does not.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from django_openai_capi.api.responses import TIMESTAMP_TOO_OLD
from django_openai_capi.delivery.answers import Answer

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Accepted(Generic[T]):
    events: Sequence[T]
    answer: Answer


@dataclass(frozen=True, slots=True)
class Refused(Generic[T]):
    """One event the API refused; ``too_old`` when for its timestamp (it expires)."""

    event: T
    answer: Answer
    message: str
    too_old: bool


@dataclass(frozen=True, slots=True)
class Stopped(Generic[T]):
    """Events left unsent: the API failed (*answer*), or the budget ran out (``None``).

    ``request_fault``: the API refused the request itself, not its events (see
    :func:`isolate`); *answer* is its last refusal.
    """

    events: Sequence[T]
    answer: Answer | None
    request_fault: bool = False


Step = Accepted[T] | Refused[T] | Stopped[T]


def isolate(
    events: Sequence[T],
    post: Callable[[Sequence[T]], Answer],
    *,
    budget: int | None = None,
) -> Iterator[Step[T]]:
    """Send *events* with *post*, isolating refused ones; yield each outcome in turn.

    A refusal that names no event (or only events the request does not have) is
    ambiguous: one bad event the API did not point at, or a request the API refuses
    whatever it carries (its ``pid`` lost by a proxy, a setting sent with every
    request). Until an event of the claim has passed, or a refusal has named one, a
    refused group is split into its first event alone and two halves of the rest; if
    that first event is refused naming none too, the last event is sent alone. Two
    lone events refused, and none passed: the request is at fault, and every event is
    stopped with ``request_fault``, failing none, after three requests at most (the
    claim, its first event, its last event); at once when the error points only at
    the request's own fields (``Answer.request_fault``). A lone event refused while another passed
    alone is a bad event, and fails as one; so does a lone event refused naming no
    event once anything passed. A claim of one event refused naming none has nothing
    to compare with, and is a request fault too: it is tried again with the pixel's
    next events, and fails once one of them passes.
    """
    limit = isolation_budget(len(events)) if budget is None else budget
    queue: deque[Sequence[T]] = deque([events]) if events else deque()
    spent = 0
    # Whether the API has shown that it judges this claim's events one by one.
    proven = False
    # A lone event refused naming no event before that, with its refusal: judged once
    # another event is.
    suspect: tuple[T, Answer] | None = None
    while queue:
        group = queue.popleft()
        if spent >= limit:
            yield Stopped([*_held(suspect), *group, *_waiting(queue)], None)
            return
        answer = post(group)
        spent += 1
        blamed = answer.blamed(len(group))
        if answer.accepted or blamed:
            proven = True
            if suspect is not None:
                yield _refused(*suspect, None)
                suspect = None
        if answer.accepted:
            yield Accepted(group, answer)
        elif answer.refused:
            if answer.request_fault:
                # The error itself points at the request (its query string, a field
                # beside the events): lone events would only be refused the same way.
                events_left = [*_held(suspect), *group, *_waiting(queue)]
                yield Stopped(events_left, answer, request_fault=True)
                return
            if len(group) == 1 and (blamed or proven):
                yield _refused(group[0], answer, 0 if 0 in blamed else None)
            elif blamed:
                for index in sorted(blamed):
                    yield _refused(group[index], answer, index)
                rest = [event for i, event in enumerate(group) if i not in blamed]
                if rest:
                    queue.appendleft(rest)
            elif proven:
                middle = len(group) // 2
                queue.appendleft(group[middle:])
                queue.appendleft(group[:middle])
            elif len(group) > 1:
                # Its first event alone, then the rest in halves: bisection, with the
                # first event's answer telling whether the events are being judged.
                middle = len(group) // 2
                queue.appendleft(group[middle:])
                if middle > 1:
                    queue.appendleft(group[1:middle])
                queue.appendleft(group[:1])
            elif suspect is None and queue:
                # A second opinion: the claim's last event alone, as far as possible
                # from the first (bad events often come in runs: one broken deploy).
                suspect = (group[0], answer)
                last = queue.pop()
                if len(last) > 1:
                    queue.append(last[:-1])
                queue.appendleft(last[-1:])
            else:
                events_left = [*_held(suspect), *group, *_waiting(queue)]
                yield Stopped(events_left, answer, request_fault=True)
                return
        else:
            yield Stopped([*_held(suspect), *group, *_waiting(queue)], answer)
            return


def _held(suspect: tuple[T, Answer] | None) -> list[T]:
    return [] if suspect is None else [suspect[0]]


def _waiting(queue: deque[Sequence[T]]) -> list[T]:
    return [event for group in queue for event in group]


def _refused(event: T, answer: Answer, index: int | None) -> Refused[T]:
    error = answer.error
    if error is None:
        return Refused(event, answer, answer.text, too_old=False)
    details = error.event_indexes().get(index, []) if index is not None else []
    codes = {detail.code for detail in details} | {error.code}
    return Refused(
        event, answer, error.describe(index), too_old=TIMESTAMP_TOO_OLD in codes
    )


def isolation_budget(size: int) -> int:
    """Requests one claim may make while isolating bad events.

    Bisecting one bad event out of *size* costs about 2·log2(size) requests, plus
    one for the first event sent alone while no event has passed (to tell a refused
    request from a bad event: :func:`isolate`). Among 1,000 events the budget is 48:
    one unnamed bad event takes at most 22 requests, two at most 40 (measured over
    every position, and 5,000 random pairs). When the API names the bad event (it
    normally does), each one costs a single extra request.
    """
    return 4 * math.ceil(math.log2(size + 1)) + 8
