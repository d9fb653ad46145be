"""The Tasks-framework task that ``OPENAI_CAPI_DISPATCH = "task"`` enqueues on commit.

Django 6 has the framework built in (``django.tasks``); on Django 5.2 it comes from the
``django-tasks`` backport. Importing this module creates the task, which loads the
configured Tasks backend: only the dispatch code and the task's worker import it, never
the app's loading.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from django_openai_capi.delivery import DeliveryReport, send_pending
from django_openai_capi.dispatch import MAX_BATCHES_PER_WAKE_UP
from django_openai_capi.exceptions import CapiError
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.building import BuildReport

# Django 6 has the framework; 5.2 has the backport. A run of the test matrix takes
# one side only, hence the pragma.
try:
    from django.tasks import task
except ImportError:  # pragma: no cover
    from django_tasks import task  # type: ignore[no-redef]


@task()
def send_pending_events(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Send what is due on *using*, at most ``MAX_BATCHES_PER_WAKE_UP`` batches.

    Returns the pass's :class:`DeliveryReport` as JSON (the result a backend stores).
    """
    try:
        report = send_pending(using=using, max_batches=MAX_BATCHES_PER_WAKE_UP)
    except Exception as exc:
        # The backend stores and logs a failed task's exception with its traceback,
        # beyond the app's redaction: hand it a redacted one, without the original.
        raise CapiError(
            f"send_pending_events failed: {describe_exception(exc)}"
        ) from None
    return report_to_json(report)


def report_to_json(report: DeliveryReport) -> dict[str, Any]:
    """*report* as JSON-safe values, with its one-line summary."""
    # The build's counts flat, as the summary gives them; its first error is an
    # exception, not JSON (and was logged where it happened).
    data = dataclasses.asdict(dataclasses.replace(report, build=BuildReport()))
    del data["build"]
    data["built"], data["not_built"] = report.built, report.not_built
    data["paused"] = {
        pixel: until.isoformat() for pixel, until in report.paused.items()
    }
    data["summary"] = report.summary()
    return data
