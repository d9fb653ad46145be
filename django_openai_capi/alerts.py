"""Telling people when delivery goes wrong: once per change of state, never per event.

A pixel's condition (paused, due events waiting too long, events failing) is a
``PixelAlert`` row. :func:`raise_alert` and :func:`clear_alert` change it with one
conditional write, so that of many workers seeing the same pause, exactly one tells:
it logs at ERROR (with the request id and the fix), sends the ``delivery_alert`` signal
and, unless ``OPENAI_CAPI_MAIL_ADMINS`` is False, emails ``ADMINS`` with
``mail_admins``. The end of a pause or of a wait is told the same way, at WARNING.

Nothing here may break delivery or a checkout: the alert's own write is best effort
(a database error is logged, and delivery goes on), a receiver or a mail server that
fails is logged and skipped, an SMTP server that hangs is cut off after
``EMAIL_TIMEOUT`` (or :data:`MAIL_TIMEOUT`), and the telling waits for the transaction
that wrote the change to commit, then, inside a delivery pass (:func:`held_back`), for
the pass to end, so that no claim waits on a mail server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import mail
from django.core.mail import mail_admins
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from django_openai_capi import signals
from django_openai_capi.conf import conf
from django_openai_capi.health import FAILURE_WINDOW, Finding, Health, Problem
from django_openai_capi.models import ErrorKind, PixelAlert
from django_openai_capi.redaction import describe_exception, redact

logger = logging.getLogger("django_openai_capi.alerts")

Condition = PixelAlert.Condition

#: A failure alert lapses after a quiet day: a failure of its kind after a whole
#: ``FAILURE_WINDOW`` without one is news again.
FAILURE_LAPSE = FAILURE_WINDOW
#: Seconds a mail server may take, when ``EMAIL_TIMEOUT`` does not say: Django's own
#: default is to wait for ever, and a worker must not.
MAIL_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Alert:
    """A change of a pixel's condition, as it is told (and as signal receivers get it)."""

    pixel_id: str
    condition: str
    #: ``ErrorKind`` value of a failure; empty for the other conditions.
    kind: str
    #: True when the condition starts, False when it ends.
    raised: bool
    #: What is wrong (or what is well again), in one or two sentences.
    summary: str
    #: What to do about it; empty when it ends.
    advice: str = ""
    request_id: str = ""

    @property
    def subject(self) -> str:
        if self.raised:
            return f"Conversions API: {Condition(self.condition).label} for pixel {self.pixel_id}"
        return f"Conversions API: pixel {self.pixel_id} recovered ({Condition(self.condition).label} ended)"

    @property
    def text(self) -> str:
        lines = [self.summary]
        if self.request_id:
            lines.append(f"Request ID (for OpenAI support): {self.request_id}")
        if self.advice:
            lines.append(f"What to do: {self.advice}")
        return "\n\n".join(lines)


def raise_alert(
    pixel_id: str,
    condition: str,
    *,
    summary: str,
    advice: str,
    kind: str = "",
    request_id: str = "",
    using: str = "default",
    now: datetime | None = None,
) -> bool:
    """Record that *pixel_id* is in *condition*; tell people if it was not already.

    Returns whether this call told (the condition is new, or a failure alert had
    lapsed). Seeing the condition again only notes when it was last seen. A database
    error is logged and returns False: the alert is lost, delivery is not.
    """
    try:
        with transaction.atomic(using=using):
            told = _raise(
                pixel_id, condition, kind, summary, advice, request_id, using, now
            )
    except DatabaseError as exc:
        _lost(pixel_id, condition, exc)
        return False
    return told


def _raise(
    pixel_id: str,
    condition: str,
    kind: str,
    summary: str,
    advice: str,
    request_id: str,
    using: str,
    now: datetime | None,
) -> bool:
    now = timezone.now() if now is None else now
    summary, advice = redact(summary), redact(advice)
    rows = PixelAlert.objects.using(using).filter(
        pixel_id=pixel_id, condition=condition, kind=kind
    )
    news = Q(active=False)
    if condition == Condition.FAILED:
        news |= Q(seen_at__lt=now - FAILURE_LAPSE)
    values = {
        "active": True,
        "raised_at": now,
        "seen_at": now,
        "cleared_at": None,
        "message": summary,
        "request_id": request_id,
    }
    told = bool(rows.filter(news).update(**values))
    if not told:
        if rows.filter(active=True).update(seen_at=now):
            return False
        try:
            with transaction.atomic(using=using):
                PixelAlert.objects.using(using).create(
                    pixel_id=pixel_id, condition=condition, kind=kind, **values
                )
        except IntegrityError:
            # Another worker raised it first: it tells.
            return False
    _tell(
        Alert(pixel_id, condition, kind, True, summary, advice, request_id),
        using=using,
    )
    return True


def clear_alert(
    pixel_id: str,
    condition: str,
    *,
    summary: str,
    kind: str = "",
    using: str = "default",
) -> bool:
    """Record that *pixel_id* is out of *condition*; tell people if it was in it."""
    try:
        with transaction.atomic(using=using):
            ended = (
                PixelAlert.objects.using(using)
                .filter(pixel_id=pixel_id, condition=condition, kind=kind, active=True)
                .update(active=False, cleared_at=timezone.now())
            )
    except DatabaseError as exc:
        _lost(pixel_id, condition, exc)
        return False
    if ended:
        _tell(Alert(pixel_id, condition, kind, False, redact(summary)), using=using)
    return bool(ended)


#: What to do about events that failed, by ``ErrorKind``.
FAILURE_ADVICE: dict[str, str] = {
    ErrorKind.BUILD: (
        "A conversion hook raised: the traceback is in the log and in each event's "
        + "last error. Fix the hook, then resend the events from the admin."
    ),
    ErrorKind.INVALID: (
        "The conversion builds data the API refuses; each event's last error names the "
        + "field. Fix the conversion, then resend the events from the admin."
    ),
    ErrorKind.SOURCE_MISSING: (
        "The saved objects were deleted before their events were built: there is "
        + "nothing to send. If that is unexpected, check what deletes them."
    ),
    ErrorKind.REJECTED: (
        "The API refused these events; each event's last error names the field. Fix "
        + "the conversion that builds them, then resend them from the admin."
    ),
    ErrorKind.EXPIRED: (
        "These events were older than the API accepts (7 days) before they could be "
        + "sent: delivery was stopped or paused for too long. Keep a worker running, "
        + "and watch manage.py openai_capi_status."
    ),
}
_SPENT = (
    "These events used every attempt (OPENAI_CAPI_MAX_ATTEMPTS) without reaching the "
    + "API. Once delivery works again (manage.py openai_capi_verify), resend them from "
    + "the admin."
)


def events_failed(
    failures: Iterable[tuple[str, str, str]],
    *,
    request_id: str = "",
    using: str = "default",
) -> None:
    """Tell of events that will not be sent: *failures* are ``(pixel, kind, error)``.

    Told once per pixel and kind, the first time or the first after a day without
    one, however many events failed: each pair costs one write here, not each event.
    """
    first: dict[tuple[str, str], str] = {}
    for pixel_id, kind, error in failures:
        first.setdefault((pixel_id, kind), error)
    for (pixel_id, kind), error in first.items():
        label = ErrorKind.words(kind)
        raise_alert(
            pixel_id,
            Condition.FAILED,
            kind=kind,
            # Not a count: more of the kind may fail in the same pass, and after this
            # one they are not told. The status page and command count them.
            summary=f"Events of pixel {pixel_id} failed ({label}) and will not be "
            + f"sent. The first: {error}",
            advice=FAILURE_ADVICE.get(kind, _SPENT),
            request_id=request_id,
            using=using,
        )


def stale_seen(
    stale: Mapping[str, Finding],
    *,
    pixel_ids: Iterable[str] | None = None,
    using: str = "default",
) -> None:
    """Raise the stale alert of the pixels in *stale*, clear it for the others.

    *stale* is ``health.stale()`` (or what an assessment found) over *pixel_ids*
    (all pixels for None): only their alerts are cleared.
    """
    for pixel_id, finding in stale.items():
        raise_alert(
            pixel_id,
            Condition.STALE,
            summary=finding.summary,
            advice=finding.advice,
            using=using,
        )
    waiting = PixelAlert.objects.using(using).filter(
        condition=Condition.STALE, active=True
    )
    if pixel_ids is not None:
        waiting = waiting.filter(pixel_id__in=list(pixel_ids))
    try:
        over = list(
            waiting.exclude(pixel_id__in=list(stale)).values_list("pixel_id", flat=True)
        )
    except DatabaseError as exc:
        _lost("", Condition.STALE, exc)
        return
    for pixel_id in over:
        clear_alert(
            pixel_id,
            Condition.STALE,
            summary=f"Events of pixel {pixel_id} are being sent again: none has been "
            + "due for longer than OPENAI_CAPI_STALE_AFTER.",
            using=using,
        )


def observe(
    health: Health,
    *,
    pixel_ids: Iterable[str] | None = None,
    using: str = "default",
) -> None:
    """Tell of what an assessment found that only an observer can: a stopped worker.

    Pauses and failures are told by delivery as they happen; a worker that is not
    running tells nothing, so whoever assesses health (the status command, the health
    check) tells of due events waiting too long. *pixel_ids* are those the assessment
    was asked about (None: every pixel), whose stale alerts it may clear.
    """
    stale = {
        finding.pixel_id: finding
        for finding in health.findings
        if finding.problem is Problem.STALE
    }
    stale_seen(stale, pixel_ids=pixel_ids, using=using)


def _lost(pixel_id: str, condition: str, exc: DatabaseError) -> None:
    logger.error(
        "Could not record the %s alert of pixel %s (it is not told): %s",
        condition,
        pixel_id,
        describe_exception(exc),
    )


_held = threading.local()


@contextmanager
def held_back() -> Iterator[None]:
    """Tell the alerts raised inside the block when it ends, not as they commit.

    A delivery pass runs in one: a pause is raised before its claim's events are
    written back, and no claim should wait on a mail server meanwhile. Nested blocks
    tell when the outermost ends.
    """
    outer = getattr(_held, "alerts", None)
    if outer is None:
        _held.alerts = []
    try:
        yield
    finally:
        if outer is None:
            waiting, _held.alerts = _held.alerts, None
            for alert in waiting:
                _deliver(alert)


def _tell(alert: Alert, *, using: str) -> None:
    # After the commit: an alert about a change that rolled back would be a false one.
    transaction.on_commit(lambda: _told(alert), using=using)


def _told(alert: Alert) -> None:
    waiting = getattr(_held, "alerts", None)
    if waiting is None:
        _deliver(alert)
    else:
        waiting.append(alert)


def _deliver(alert: Alert) -> None:
    if alert.raised:
        logger.error("%s", alert.text.replace("\n\n", " "))
    else:
        logger.warning("%s", alert.text.replace("\n\n", " "))
    signals.send(signals.delivery_alert, PixelAlert, alert=alert)
    if not conf.OPENAI_CAPI_MAIL_ADMINS:
        return
    try:
        mail_admins(alert.subject, alert.text + _FOOTER, **_mail_options())
    except Exception as exc:  # a mail server must not stop delivery
        logger.error(
            "Could not email ADMINS about pixel %s: %s",
            alert.pixel_id,
            describe_exception(exc),
        )


def _mail_options() -> dict[str, Any]:
    """A connection that gives up on a silent SMTP server, where Django's would not.

    Django 6.1 replaces connections with ``MAILERS``, whose options set the timeout
    (README, "Telling people"); before it, the SMTP backend waits for ever unless
    ``EMAIL_TIMEOUT`` says otherwise.
    """
    if hasattr(mail, "mailers"):
        return {}
    connection = mail.get_connection()
    if getattr(connection, "timeout", False) is None:
        setattr(connection, "timeout", MAIL_TIMEOUT)  # noqa: B010 - not on the base class
    return {"connection": connection}


_FOOTER = (
    "\n\n--\nSent by django-openai-capi once per change, not per event. "
    + "manage.py openai_capi_status shows the state of every pixel; set "
    + "OPENAI_CAPI_MAIL_ADMINS = False to stop these emails."
)
