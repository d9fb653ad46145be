"""Finding the bad events of a rejected batch, so that the good ones still go through.

The API refuses a whole batch for one bad event. Its error normally names the event
(``param: "events[3]"``): that event is set aside and the rest is sent again, one extra
request per bad event. When the error names none, the batch is split in halves until
the bad events stand alone (about 2·log2(n) requests for one bad event in n). Either
way a budget bounds the requests one claim can make.

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
    """Events left unsent: the API failed (*answer*), or the budget ran out (``None``)."""

    events: Sequence[T]
    answer: Answer | None


Step = Accepted[T] | Refused[T] | Stopped[T]


def isolate(
    events: Sequence[T],
    post: Callable[[Sequence[T]], Answer],
    *,
    budget: int | None = None,
) -> Iterator[Step[T]]:
    """Send *events* with *post*, isolating refused ones; yield each outcome in turn."""
    limit = isolation_budget(len(events)) if budget is None else budget
    queue: deque[Sequence[T]] = deque([events]) if events else deque()
    spent = 0
    while queue:
        group = queue.popleft()
        if spent >= limit:
            yield Stopped([*group, *(event for rest in queue for event in rest)], None)
            return
        answer = post(group)
        spent += 1
        verdict = answer.verdict
        if verdict is Verdict.ACCEPTED:
            yield Accepted(group, answer)
        elif verdict is Verdict.REJECTED:
            blamed = _blamed(answer, len(group))
            if len(group) == 1:
                yield _refused(group[0], answer, 0 if 0 in blamed else None)
            elif blamed:
                for index in sorted(blamed):
                    yield _refused(group[index], answer, index)
                rest = [event for i, event in enumerate(group) if i not in blamed]
                if rest:
                    queue.appendleft(rest)
            else:
                middle = len(group) // 2
                queue.appendleft(group[middle:])
                queue.appendleft(group[:middle])
        else:
            yield Stopped(
                [*group, *(event for rest in queue for event in rest)], answer
            )
            return


def _blamed(answer: Answer, size: int) -> set[int]:
    if answer.error is None:
        return set()
    return {index for index in answer.error.event_indexes() if index < size}


def _refused(event: T, answer: Answer, index: int | None) -> Refused[T]:
    error = answer.error
    if error is None:
        return Refused(event, answer, answer.text, too_old=False)
    details = error.event_indexes().get(index, []) if index is not None else []
    codes = {detail.code for detail in details} | {error.code}
    return Refused(
        event, answer, error.describe(index), too_old=TIMESTAMP_TOO_OLD in codes
    )
