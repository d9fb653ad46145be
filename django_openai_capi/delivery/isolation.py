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

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from django_openai_capi.api.responses import TIMESTAMP_TOO_OLD, ApiErrorBody
from django_openai_capi.delivery.policy import Verdict, classify, isolation_budget

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got back, as delivery needs it."""

    #: ``None``: no response at all (timeout, refused or dropped connection).
    status: int | None
    request_id: str = ""
    retry_after: float | None = None
    error: ApiErrorBody | None = None
    #: A redacted description of what went wrong; empty for a 2xx.
    text: str = ""
    duration_ms: int = 0

    @property
    def verdict(self) -> Verdict:
        verdict = classify(self.status)
        if verdict is Verdict.REJECTED and self.error is None and self.status != 413:
            # A 400 without the API's error envelope (a proxy's or firewall's page)
            # says nothing against any event: failing them one by one would
            # dead-letter a whole backlog over an infrastructure fault.
            return Verdict.RETRY
        return verdict

    def blamed(self, size: int) -> set[int]:
        """The events of a request of *size* events that the error names, by index.

        An index past the request's end names nothing: the answer is not about what
        was sent.
        """
        if self.error is None:
            return set()
        return {index for index in self.error.event_indexes() if index < size}


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
    the request's own fields (``ApiErrorBody.names_the_request``). A lone event refused while another passed
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
        verdict = answer.verdict
        blamed = answer.blamed(len(group)) if verdict is Verdict.REJECTED else set()
        if verdict is Verdict.ACCEPTED or blamed:
            proven = True
            if suspect is not None:
                yield _refused(*suspect, None)
                suspect = None
        if verdict is Verdict.ACCEPTED:
            yield Accepted(group, answer)
        elif verdict is Verdict.REJECTED:
            if (
                not blamed
                and answer.error is not None
                and answer.error.names_the_request()
            ):
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
