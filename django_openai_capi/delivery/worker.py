"""``send_pending``: one pass of delivery, as the command, the task and the wake-up run it.

A pass takes back the claims of dead workers, builds the payloads of newly recorded
model conversions, then claims and sends batch after batch, pixel by pixel, until
nothing is due, a limit is reached, or it is asked to stop. It is safe to run any
number of passes at once: the claim is the only coordination they need.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence

from django.utils import timezone

from django_openai_capi import alerts
from django_openai_capi.api import spec
from django_openai_capi.conf import conf
from django_openai_capi.delivery import pauses
from django_openai_capi.delivery.claim import claim_batch
from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.delivery.sender import deliver
from django_openai_capi.delivery.sweeps import expire_overdue, reap_expired_leases
from django_openai_capi.exceptions import CapiConfigurationError, ConversionError
from django_openai_capi.models import ConversionEvent, PixelPause
from django_openai_capi.tracking.building import BUILD_CHUNK, build_pending

logger = logging.getLogger("django_openai_capi.delivery")


def worker_name() -> str:
    """``host:pid``: which process made a request, on its DeliveryBatch row."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_pending(
    *,
    pixel_ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    validate_only: bool | None = None,
    using: str = "default",
    worker: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver what is due now; return what happened.

    *batch_size* defaults to ``OPENAI_CAPI_BATCH_SIZE`` and *validate_only* to
    ``OPENAI_CAPI_VALIDATE_ONLY``. *should_stop* is asked between batches (a batch in
    flight is always finished and recorded); *on_batch* is called after each one.
    """
    report = DeliveryReport()
    if not conf.OPENAI_CAPI_SEND_ENABLED:
        report.disabled = True
        return report
    size = batch_size or conf.OPENAI_CAPI_BATCH_SIZE
    validate = (
        conf.OPENAI_CAPI_VALIDATE_ONLY if validate_only is None else validate_only
    )
    name = worker or worker_name()
    report.reaped = reap_expired_leases(using=using)
    report.expired += expire_overdue(using=using)
    _build(report, using, bounded=max_batches is not None)
    events = ConversionEvent.objects.using(using).of_pixels(pixel_ids)
    for pixel_id in events.due_pixels():
        if should_stop() or _limit_reached(report, max_batches):
            break
        if not _can_send(pixel_id, report, using):
            continue
        halted = _drain(
            pixel_id,
            report,
            size,
            validate,
            name,
            using,
            max_batches,
            should_stop,
            on_batch,
        )
        if halted:
            until = pauses.paused_until(pixel_id, using=using)
            if until is not None:
                report.paused[pixel_id] = until
    return report


def due_count(
    *,
    pixel_ids: Sequence[str] | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    paused: bool = False,
    using: str = "default",
) -> int:
    """How many due events a pass with these options would take now, for a progress bar.

    The events of paused pixels are left out, as delivery leaves them, unless *paused*
    (validation checks them too). A guess, never a promise: other workers claim
    meanwhile.
    """
    now = timezone.now()
    due = ConversionEvent.objects.using(using).of_pixels(pixel_ids).due(now=now)
    if not paused:
        pauses = PixelPause.objects.using(using).filter(paused_until__gt=now)
        due = due.exclude(pixel_id__in=pauses.values("pixel_id"))
    count = due.count()
    if max_batches is None:
        return count
    return min(count, max_batches * (batch_size or conf.OPENAI_CAPI_BATCH_SIZE))


def _drain(
    pixel_id: str,
    report: DeliveryReport,
    size: int,
    validate_only: bool,
    worker: str,
    using: str,
    max_batches: int | None,
    should_stop: Callable[[], bool],
    on_batch: Callable[[DeliveryReport], None] | None,
) -> bool:
    """Claim and send batches of *pixel_id* until none is due, a limit is reached or
    the pass is asked to stop; whether an answer paused the pixel."""
    resumed = False
    while True:
        claim = claim_batch(pixel_id, size=size, using=using)
        if claim is None:
            return False
        report.batches += 1
        report.claimed += len(claim.events)
        # What the claim's answer makes worth telling is told once its events are
        # written back: a slow mail server must not hold them in sending.
        with alerts.held_back():
            result = deliver(
                claim, validate_only=validate_only, worker=worker, using=using
            )
        report.merge(result)
        if on_batch is not None:
            on_batch(report)
        if result.halted:
            return True
        if result.requests and not resumed:
            # A request got an answer that paused nothing: a pause another worker's
            # failure left on the pixel is over.
            pauses.resume(pixel_id, using=using)
            resumed = True
        if should_stop() or _limit_reached(report, max_batches):
            return False


def _limit_reached(report: DeliveryReport, max_batches: int | None) -> bool:
    return max_batches is not None and report.batches >= max_batches


def _can_send(pixel_id: str, report: DeliveryReport, using: str) -> bool:
    problem = configuration_problem(pixel_id)
    if problem is not None:
        # Its events wait: a missing key is fixed by a deploy, not by failing them.
        report.skipped[pixel_id] = problem
        if (pixel_id, problem) not in _reported:
            # Once per process: a worker looping every few seconds would otherwise
            # repeat it for as long as the setting stays wrong.
            _reported.add((pixel_id, problem))
            logger.error("Not sending to pixel %s: %s", pixel_id, problem)
        return False
    until = pauses.paused_until(pixel_id, using=using)
    if until is not None:
        report.paused[pixel_id] = until
        return False
    return True


#: Configuration problems already logged by this process.
_reported: set[tuple[str, str]] = set()


def configuration_problem(pixel_id: str) -> str | None:
    """Why nothing can be sent to *pixel_id* now, checked before anything is claimed."""
    try:
        # Also refuses a key that cannot be sent: manage.py check reports it, but a
        # gunicorn or task worker never runs the checks, and such a key would fail
        # every request and cost attempts.
        conf.api_key_for(pixel_id)
    except CapiConfigurationError as exc:
        return str(exc)
    source = conf.OPENAI_CAPI_INTEGRATION_SOURCE
    if source is not None and not spec.is_integration_source(source):
        # Every request would carry it; claiming first would strand the batch.
        return (
            "OPENAI_CAPI_INTEGRATION_SOURCE does not fit the API's format (1-64 "
            + "letters, digits, '.', '_' or '-', starting with a letter or digit); "
            + "see manage.py check."
        )
    return None


def _build(report: DeliveryReport, using: str, *, bounded: bool) -> None:
    """Build what was recorded: everything, or one chunk in a bounded pass.

    A bounded pass (a wake-up, possibly in the host's request) must not build a
    backlog left by a backfill or an outage: that is the worker command's job.
    """
    while True:
        try:
            built = build_pending(limit=BUILD_CHUNK, using=using)
        except ConversionError:
            # Raised only under OPENAI_CAPI_RAISE_ERRORS, after every outcome was
            # stored and logged: the worker goes on with what was built.
            logger.warning("Some conversions could not be built; see the errors above.")
            break
        report.build.merge(built)
        if bounded or built.total < BUILD_CHUNK:
            break
