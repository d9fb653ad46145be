"""A django-health-check check: are conversions flowing to the Conversions API?

It reports what ``manage.py openai_capi_status`` reports (both read
``health.assess``): a pixel that is paused, has no usable key, or whose events have
been due too long (no worker sending) makes it fail with each problem's summary.

django-health-check 4 answers HTTP 500 when any check raises, warnings included, so
failed events (each its own conversion's fault, not a stop of delivery) pass unless
``fail_on_error`` is set, as with the command's ``--fail-on-error``. Do not list this
check on an endpoint a load balancer probes: a paused pixel must not take web
servers out of rotation. Put it on the endpoint uptime monitors watch (README).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from asgiref.sync import sync_to_async
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from django_openai_capi import alerts
from django_openai_capi.health import UNHEALTHY, Finding, Health, Problem, assess
from django_openai_capi.redaction import redact


@dataclasses.dataclass
class OpenAIConversions(HealthCheck):  # type: ignore[misc]  # the package is untyped
    """Delivery to the OpenAI Ads Conversions API, per pixel.

    Args:
        pixels: Only these pixels (default: every pixel delivery knows of).
        database: The database holding the events.
        fail_on_error: Also fail when events failed or expired in the last 24 hours.

    """

    pixels: Sequence[str] | None = None
    database: str = "default"
    fail_on_error: bool = False

    async def run(self) -> None:
        # Thread-sensitive, as Django runs a sync view: the ORM on the connection the
        # request's thread manages, not one that a pool thread would leave open.
        health = await sync_to_async(self.assess)()
        unhealthy = [f for f in health.findings if f.problem in UNHEALTHY]
        failed = [f for f in health.findings if f.problem is Problem.FAILED]
        if unhealthy:
            raise ServiceUnavailable(_message(unhealthy))
        if failed and self.fail_on_error:
            raise ServiceWarning(_message(failed))

    def assess(self) -> Health:
        pixel_ids = None if self.pixels is None else list(self.pixels)
        health = assess(pixel_ids=pixel_ids, using=self.database)
        # A stopped worker tells nobody; whoever looks at health does (alerts.py).
        alerts.observe(health, pixel_ids=pixel_ids, using=self.database)
        return health


def _message(findings: Sequence[Finding]) -> str:
    # Shown on a page that may be less private than the admin: redacted once more,
    # although the errors it quotes were redacted when they were stored.
    return redact(" ".join(finding.summary for finding in findings))
