"""Waking delivery up when a transaction that recorded events commits.

Every transaction that records events schedules one wake-up on commit, however many
events it recorded. What the wake-up does depends on ``OPENAI_CAPI_DISPATCH``:
``"task"`` enqueues :func:`django_openai_capi.tasks.send_pending_events` through the
Tasks framework, ``"inline"`` sends in the committing process, ``"none"`` does nothing.

A wake-up is only an optimisation: a process can die between the commit and its hooks,
and a task backend can be down. ``manage.py openai_capi_send`` is the guarantee, so
nothing here ever raises into the host's request: failures are logged and the events
wait for the worker.
"""

from __future__ import annotations

import importlib.util
import logging

from django.db import connections, transaction
from django.utils.module_loading import import_string

from django_openai_capi.conf import conf
from django_openai_capi.redaction import describe_exception, format_traceback

logger = logging.getLogger("django_openai_capi.dispatch")

#: The most batches one wake-up sends. A transaction records a handful of events, far
#: fewer than a batch; a backlog (after an outage, a backfill) is the worker command's
#: job. The bound keeps an inline send from turning one request into a backlog drain,
#: and a task well inside the time limits task runners put on a job (10 requests of at
#: most the default 10 s timeout).
MAX_BATCHES_PER_WAKE_UP = 10

# By dotted path, not imported: tracking imports this module and delivery imports
# tracking, so an import here, even inside a function, would make them one import
# cycle, and mypy then confuses the ``track`` function with its module.
_SEND_PENDING = "django_openai_capi.delivery.worker.send_pending"
_TASK = "django_openai_capi.tasks.send_pending_events"


def tasks_framework() -> str | None:
    """Name the Tasks framework: ``"django.tasks"``, ``"django_tasks"`` or None.

    ``django.tasks`` is Django's own (6.0+); ``django_tasks`` is its backport.
    Django's own wins where both exist, so a project that upgraded to Django 6 uses it
    even if the backport is still installed.
    """
    for name in ("django.tasks", "django_tasks"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


class WakeUp:
    """The on-commit callback: one send of what is due on its database.

    A class, not a closure, so that :func:`wake_up` can recognise a pending one among
    a connection's commit hooks.
    """

    def __init__(self, using: str) -> None:
        self.using = using

    def __call__(self) -> None:
        # Read again: the setting may have changed since the hook was registered
        # (override_settings in a test), and "none" must then mean nothing.
        dispatch = conf.OPENAI_CAPI_DISPATCH
        if dispatch == "task":
            enqueue(self.using)
        elif dispatch == "inline":
            send_inline(self.using)


def wake_up(using: str) -> None:
    """Have what was recorded on *using* sent once its transaction commits.

    Called for every recorded event; schedules at most one wake-up per transaction.
    Outside a transaction the wake-up runs at once.
    """
    if conf.OPENAI_CAPI_DISPATCH not in ("task", "inline"):
        return
    if not conf.OPENAI_CAPI_SEND_ENABLED:
        return
    # Django's own list of pending hooks, not a flag of ours: it drops the hooks of a
    # rolled-back savepoint and clears them all on rollback, where a flag would go
    # stale and the next transaction would schedule nothing.
    # Entries are (savepoint ids, callback, robust); indexed, as the stubs miss robust.
    if any(isinstance(entry[1], WakeUp) for entry in connections[using].run_on_commit):
        return
    transaction.on_commit(WakeUp(using), using=using, robust=True)


def enqueue(using: str) -> None:
    """Enqueue the sending task; log, never raise, if the backend cannot take it."""
    try:
        # Loaded here, not when the app loads: defining the task instantiates the
        # Tasks backend, which only DISPATCH = "task" needs.
        import_string(_TASK).enqueue(using=using)
    except Exception as exc:
        logger.error(
            "Could not enqueue the task that sends conversion events (%s); they wait "
            + "for manage.py openai_capi_send.\n%s",
            describe_exception(exc),
            format_traceback(exc),
        )


def send_inline(using: str) -> None:
    """Send what is due now, in this process; log, never raise."""
    try:
        send_pending = import_string(_SEND_PENDING)
        report = send_pending(using=using, max_batches=MAX_BATCHES_PER_WAKE_UP)
    except Exception as exc:
        logger.error(
            "Sending conversion events on commit failed (%s); they wait for "
            + "manage.py openai_capi_send.\n%s",
            describe_exception(exc),
            format_traceback(exc),
        )
    else:
        logger.debug("Sent on commit: %s", report.summary())
