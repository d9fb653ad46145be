"""Sending one claim: post, isolate, record.

:func:`deliver` sends a claim's events in one request (or, for a rejected batch, the
requests that isolate its bad events), records each request on its ``DeliveryBatch``
row, and each outcome on the events (``outcomes.py``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence

from django.utils import timezone

from django_openai_capi.conf import conf
from django_openai_capi.delivery.answers import Answer, ask
from django_openai_capi.delivery.claim import Claim, ClaimedEvent, renew_lease
from django_openai_capi.delivery.isolation import Accepted, Refused, isolate
from django_openai_capi.delivery.outcomes import Outcomes, save_alone
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.models import DeliveryBatch, carried_pks

logger = logging.getLogger("django_openai_capi.delivery")


def deliver(
    claim: Claim,
    *,
    validate_only: bool,
    worker: str,
    using: str = "default",
    answered: Answer | None = None,
) -> DeliveryReport:
    """Send the events of *claim* and record every outcome.

    *answered*: the answer to the claim's first request (every event still in its
    window), when it was made ahead (``pipeline.py``).
    """
    report = DeliveryReport()
    record = Outcomes(claim, report, using=using)
    fresh = record.expire_stale()
    requests = _Requests(
        claim,
        report,
        validate_only=validate_only,
        worker=worker,
        using=using,
        answered=answered,
        still_sending=record.unsettled,
    )
    try:
        for step in isolate(fresh, requests.post):
            if isinstance(step, Accepted):
                row = requests.row_of(step.answer)
                record.accepted(step, row, validate_only=validate_only)
            elif isinstance(step, Refused):
                record.refused(step)
            else:
                if step.request_fault:
                    requests.refused_as_requests()
                record.stopped(step)
    except LeaseLost:
        logger.warning(
            "Lost the lease of batch %s while isolating rejected events; another "
            + "worker has taken them back.",
            claim.id,
        )
    except Exception as exc:
        requests.save_pending_row()
        record.broken(exc)
    return report


class LeaseLost(Exception):
    """Another worker took the claim's events back: this one must stop touching them."""


class _Requests:
    """The requests one claim makes, each recorded on its ``DeliveryBatch`` row."""

    def __init__(
        self,
        claim: Claim,
        report: DeliveryReport,
        *,
        validate_only: bool,
        worker: str,
        using: str,
        answered: Answer | None,
        still_sending: Callable[[], Sequence[ClaimedEvent]],
    ) -> None:
        self.claim = claim
        self.report = report
        self.validate_only = validate_only
        self.worker = worker[:128]
        self.using = using
        self.answered = answered
        self.still_sending = still_sending
        self.started = time.monotonic()
        self.made = 0
        #: The requests refused naming none of their events: the ones a request fault
        #: found later is about.
        self.unblamed: list[DeliveryBatch] = []
        #: The last accepted answer and its row, written with its outcome (``row_of``).
        self.pending: tuple[Answer, DeliveryBatch] | None = None

    def post(self, group: Sequence[ClaimedEvent]) -> Answer:
        """Send *group*, record the request (or keep its row for its outcome)."""
        self._keep_lease()
        if self.answered is not None and not self.made:
            # isolate() starts with the whole group: what the pipeline sent.
            answer = self.answered
        else:
            payloads = [event.payload for event in group]
            answer = ask(
                self.claim.pixel_id, payloads, validate_only=self.validate_only
            )
        row = self._row(group, answer)
        self.made += 1
        self.report.requests += 1
        if answer.accepted:
            self.pending = (answer, row)
        else:
            row.save(using=self.using, force_insert=True)
            if answer.refused and not answer.blamed(len(group)):
                self.unblamed.append(row)
        return answer

    def row_of(self, answer: Answer) -> DeliveryBatch:
        """The unwritten row of the accepted request that got *answer*."""
        assert self.pending is not None and self.pending[0] is answer
        row = self.pending[1]
        self.pending = None
        return row

    def save_pending_row(self) -> None:
        """Write the row of an accepted request whose outcome will not be recorded."""
        if self.pending is not None:
            save_alone(self.pending[1], self.using)
            self.pending = None

    def refused_as_requests(self) -> None:
        """The unblamed refusals were the request's, not their events': file them so.

        Each was recorded as a rejection when its answer came, before delivery could
        tell that the API refuses the request itself, not its events.
        """
        DeliveryBatch.objects.using(self.using).filter(
            claim_id=self.claim.id,
            pk__in=[row.pk for row in self.unblamed],
            outcome=DeliveryBatch.Outcome.REJECTED,
        ).update(outcome=DeliveryBatch.Outcome.REQUEST_REFUSED)

    def _keep_lease(self) -> None:
        # A long isolation can outlive the lease; renew it (fenced) rather than let a
        # second worker send the same events alongside this one. Every event of the
        # claim still sending, not only this group: the halves waiting their turn
        # would otherwise be taken back from under this worker.
        if not self.made:
            return
        if time.monotonic() - self.started <= conf.OPENAI_CAPI_LEASE_SECONDS / 3:
            return
        pks = [event.pk for event in self.still_sending()]
        if not renew_lease(self.claim, pks, using=self.using):
            raise LeaseLost

    def _row(self, group: Sequence[ClaimedEvent], answer: Answer) -> DeliveryBatch:
        claim = self.claim
        return DeliveryBatch(
            # The first request of a claim takes the claim's id, so an event's
            # claim_id finds the request that carried it.
            id=uuid.uuid4() if self.made else claim.id,
            claim_id=claim.id,
            pixel_id=claim.pixel_id,
            size=len(group),
            # A group is drawn from the claim's events without repeats: as many is all.
            carried=""
            if len(group) == len(claim.events)
            else carried_pks(event.pk for event in group),
            validate_only=self.validate_only,
            outcome=answer.outcome,
            http_status=answer.status,
            duration_ms=answer.duration_ms,
            request_id=answer.request_id,
            error=answer.text,
            worker=self.worker,
            created_at=answer.started,
            finished_at=timezone.now(),
        )
