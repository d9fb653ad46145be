"""Draining one pixel's due events, with the next request in flight while this one is recorded.

Sent one after another, a batch costs its request plus the worker's own database work:
the claim of the next batch, the ``DeliveryBatch`` row and the outcome of this one. Once
the API has accepted a batch in this pass, the worker overlaps the two: while a request
is in flight it claims the next batch, and as soon as an answer comes back it sends the
next request and records the answer it has. The request runs in a second thread that
touches no database; every claim and every outcome stays in the worker's own thread and
connection, fenced as always.

Nothing is sent ahead into trouble: the next request starts only after the previous one
went through, so after a refusal, a rejected batch or an outage the requests go one at a
time, in the order a serial worker would make them. A claim taken ahead that will not be
sent (the answer in flight paused the pixel, or the worker is asked to stop) is given
back at once with its attempt, rather than waiting for its lease to run out.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django_openai_capi.delivery import pauses
from django_openai_capi.delivery.answers import Answer, ask
from django_openai_capi.delivery.claim import Claim, claim_batch
from django_openai_capi.delivery.outcomes import Outcomes
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.delivery.sender import deliver


@dataclass
class Drain:
    """How one pass drains a pixel: its limits, and where it reports."""

    pixel_id: str
    size: int
    validate_only: bool
    worker: str
    using: str
    #: ``False`` when the pass must stop claiming (asked to stop, or at its limit).
    may_claim: Callable[[], bool]
    #: Called with each claim as it is taken; with each claim's report once recorded,
    #: or once given back.
    on_claimed: Callable[[Claim], None]
    on_released: Callable[[DeliveryReport], None]
    on_delivered: Callable[[DeliveryReport], None]
    should_stop: Callable[[], bool]

    def run(self, executor: ThreadPoolExecutor) -> DeliveryReport | None:
        """Claim and send until nothing is due or a limit is reached.

        Returns the report of the claim that paused the pixel, if one did.
        """
        claim = self._claim()
        if claim is None:
            return None
        in_flight = self._send(executor, claim)
        went_through = False
        resumed = False
        while True:
            # Ahead only once a request went through: after a refusal or an outage the
            # next claim would most likely be given back unsent.
            looked_ahead = went_through and self.may_claim()
            upcoming = self._claim() if looked_ahead else None
            answered = _answer_of(in_flight)
            went_through = answered is None or answered.accepted
            ahead = None
            if upcoming is not None and went_through:
                ahead = self._send(executor, upcoming)
            result = deliver(
                claim,
                validate_only=self.validate_only,
                worker=self.worker,
                using=self.using,
                answered=answered,
            )
            self.on_delivered(result)
            if result.halted:
                if upcoming is not None:
                    # Its request was not sent: the answer that halted was no 2xx.
                    self._release(upcoming)
                return result
            if result.requests and not resumed:
                pauses.resume(self.pixel_id, using=self.using)
                resumed = True
            if upcoming is not None and ahead is None and self.should_stop():
                self._release(upcoming)
                return None
            if not looked_ahead:
                upcoming = self._claim() if self.may_claim() else None
            if upcoming is None:
                return None
            claim = upcoming
            in_flight = ahead if ahead is not None else self._send(executor, claim)

    def _claim(self) -> Claim | None:
        claim = claim_batch(self.pixel_id, size=self.size, using=self.using)
        if claim is not None:
            self.on_claimed(claim)
        return claim

    def _send(
        self, executor: ThreadPoolExecutor, claim: Claim
    ) -> Future[Answer | None]:
        return executor.submit(ask_ahead, claim, validate_only=self.validate_only)

    def _release(self, claim: Claim) -> None:
        report = DeliveryReport()
        Outcomes(claim, report, using=self.using).released()
        self.on_released(report)


def ask_ahead(claim: Claim, *, validate_only: bool) -> Answer | None:
    """Send the first request of *claim*: every event of it still in its window.

    Touches no database, so that it can run in another thread while the worker records
    the previous claim's outcome and claims the next one. ``None`` when the claim has
    nothing to send (``deliver`` expires its stale events).
    """
    payloads = [event.payload for event in claim.events if not event.stale]
    if not payloads:
        return None
    return ask(claim.pixel_id, payloads, validate_only=validate_only)


def _answer_of(in_flight: Future[Answer | None]) -> Answer | None:
    """Wait for the request in flight, handling signals while it lasts.

    A signal (Ctrl-C, SIGTERM) that lands in the sending thread is handled by the main
    thread only when it runs Python code again: a blocking wait would hold it for the
    whole request, and two Ctrl-Cs in that time would count as one.
    """
    while True:
        try:
            return in_flight.result(timeout=_POLL_SECONDS)
        except TimeoutError:
            continue


_POLL_SECONDS = 0.1
