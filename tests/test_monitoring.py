"""When conversions stop flowing, every channel an operator watches says so.

Three ways delivery stops, each against the fake Conversions API on loopback: a revoked
key (401), a request-level fault (a proxy that strips ``?pid=``, so every request is
refused whatever it carries) and a worker that is not running. Each is seen by the send
command's exit status, ``openai_capi_status``, the django-health-check backend, an
email to ADMINS and a banner on the admin's status page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

import tests.contrib.urls
import tests.urls
from django_openai_capi.health import ExitCode
from django_openai_capi.models import ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import ADMINS, MakeEvents

# Alerts are told once the transaction that raised them commits.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.test_monitoring"),
]

# The admin, and the health-check endpoint that uptime monitors watch.
urlpatterns = tests.urls.urlpatterns + tests.contrib.urls.urlpatterns

KEY = "sk-capi-SECRET-live-key"
MISSING_PID = {
    "error": {
        "message": "Missing required parameter: 'pid'.",
        "type": "invalid_request_error",
        "param": "pid",
        "code": "missing_required_parameter",
    }
}


@dataclass(frozen=True)
class Scenario:
    name: str
    #: Breaks delivery: given the fake and the settings, before anything is sent.
    break_it: Callable[[FakeConversionsAPI, Any], None]
    #: What the send command, run by cron, exits with.
    exit_code: ExitCode
    #: A phrase each channel must show: the cause in words.
    cause: str
    #: A phrase of the fix.
    fix: str
    #: Whether the worker runs (a stopped one runs nothing until the check).
    worker_runs: bool = True


def revoke(fake: FakeConversionsAPI, settings: Any) -> None:
    fake.revoke_key(KEY)


def strip_pid(fake: FakeConversionsAPI, settings: Any) -> None:
    fake.answer_every_request(400, MISSING_PID, headers={"x-request-id": "req-no-pid"})


def stop_worker(fake: FakeConversionsAPI, settings: Any) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 600
    ConversionEvent.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))


SCENARIOS = [
    Scenario(
        "revoked key",
        revoke,
        ExitCode.PAUSED,
        cause="401",
        fix="Conversions API key",
    ),
    Scenario(
        "request-level fault",
        strip_pid,
        ExitCode.PAUSED,
        cause="pid",
        fix="OPENAI_CAPI_ENDPOINT",
    ),
    Scenario(
        "stopped worker",
        stop_worker,
        ExitCode.STALE,
        cause="have been due for",
        fix="worker",
        worker_runs=False,
    ),
]


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key=KEY) as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        settings.OPENAI_CAPI_API_KEY = KEY
        settings.ADMINS = ADMINS
        yield api


def run(command: str, *args: str) -> tuple[int, str, str]:
    """The exit status, stdout, and all the command said (stdout, stderr, error)."""
    out, err = StringIO(), StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"{out.getvalue()}{err.getvalue()}{exc}"
    return 0, out.getvalue(), out.getvalue() + err.getvalue()


def status_page() -> str:
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "x"))
    response = client.get("/admin/django_openai_capi/deliverystatus/")
    assert response.status_code == 200
    return response.content.decode()


def probe() -> tuple[int, str]:
    """What an uptime monitor polling django-health-check gets."""
    response = Client().get("/health/application/", HTTP_ACCEPT="application/json")
    return response.status_code, json.dumps(response.json())


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_channel_says_that_delivery_stopped_why_and_what_to_do(
    scenario: Scenario,
    fake: FakeConversionsAPI,
    make_events: MakeEvents,
    settings: Any,
) -> None:
    make_events(3)
    scenario.break_it(fake, settings)

    if scenario.worker_runs:
        code, _, said = run("openai_capi_send")
        assert code == scenario.exit_code, said
        assert scenario.cause in said
    health_code, _, health_text = run("openai_capi_status")
    health_json = json.loads(run("openai_capi_status", "--json")[1])
    probe_status, probe_text = probe()
    page = status_page()
    if not scenario.worker_runs:
        # Looked at by cron's status check and the probe, then found by the worker
        # when it finally runs: it sends, and says it was late.
        code, _, said = run("openai_capi_send")
        assert code == scenario.exit_code, said

    assert health_code == scenario.exit_code, health_text
    assert scenario.cause in health_text and scenario.fix in health_text
    assert health_json["healthy"] is False
    assert scenario.cause in json.dumps(health_json)
    assert probe_status == 500
    assert scenario.cause in probe_text
    # Django mails the probe's HTTP 500 too (README: filter it); ours is one alert.
    (message,) = [m for m in mail.outbox if "Conversions API:" in m.subject]
    assert scenario.cause in message.body and scenario.fix in message.body
    assert scenario.cause in page and scenario.fix in page
    for seen in (
        said,
        health_text,
        json.dumps(health_json),
        probe_text,
        message.body,
        page,
    ):
        assert KEY not in seen
