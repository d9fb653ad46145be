"""The django-health-check check reports what ``openai_capi_status`` reports.

Through the package's real view (django-health-check 4, installed by the test
dependencies), as an uptime monitor sees it: HTTP 200 when conversions flow, 500 with
the problem's summary when a pixel is paused, has no key or no worker sends its events.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
from asgiref.sync import async_to_sync
from django.apps import apps
from django.core import checks, mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable

from django_openai_capi.contrib.health_check.apps import check_health_check
from django_openai_capi.contrib.health_check.backends import OpenAIConversions
from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent, PixelAlert
from django_openai_capi.testing import FakeConversionsAPI
from tests.outbox import ADMINS, MakeEvents, fake_at_endpoint, refuse_every_request

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.contrib.urls")]

ENDPOINT = "http://127.0.0.1:9/v1/events"
KEY = "sk-svcacct-TOPSECRET-health-0123456789"
NAME = "OpenAIConversions(pixels=None, database='default', fail_on_error=False)"
Status = ConversionEvent.Status


@pytest.fixture
def fake(settings: Any, api: responses.RequestsMock) -> Iterator[FakeConversionsAPI]:
    yield fake_at_endpoint(settings, api, KEY)


def probe(client: Client, url: str = "/health/application/") -> tuple[int, str]:
    """What a monitor gets: the status code, and the check's line of the JSON."""
    response = client.get(url, HTTP_ACCEPT="application/json")
    (line,) = json.loads(response.content).values()
    return response.status_code, line


def test_healthy_delivery_is_ok(
    client: Client, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    make_events(2)
    assert send_pending().sent == 2

    response = client.get("/health/application/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert json.loads(response.content) == {NAME: "OK"}


def test_a_revoked_key_makes_it_unavailable_with_the_pause(
    client: Client, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    fake.revoke_key(KEY)
    make_events(2)
    send_pending()

    code, line = probe(client)

    assert code == 500
    assert line.startswith("Unavailable: Delivery to pixel test-pixel is paused since ")
    assert "HTTP 401: Unauthorized" in line
    assert KEY not in line


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("auth_backend_failure", "HTTP 503: Authentication backend failure"),
        ("request_refused", "HTTP 400: Invalid event."),
    ],
)
def test_a_request_level_fault_makes_it_unavailable(
    client: Client,
    fake: FakeConversionsAPI,
    make_events: MakeEvents,
    fault: str,
    expected: str,
) -> None:
    refuse_every_request(fake, fault)
    make_events(1)
    send_pending()

    code, line = probe(client)

    assert code == 500
    assert line.startswith("Unavailable: Delivery to pixel test-pixel is paused")
    assert expected in line


def test_a_stopped_worker_makes_it_unavailable_and_admins_are_told_once(
    client: Client,
    make_events: MakeEvents,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.ADMINS = ADMINS
    make_events(3, next_attempt_at=timezone.now() - timedelta(hours=1))

    with django_capture_on_commit_callbacks(execute=True):
        first = probe(client)
    with django_capture_on_commit_callbacks(execute=True):
        second = probe(client)

    assert first == second
    assert first[0] == 500
    assert first[1].startswith(
        "Unavailable: Events of pixel test-pixel have been due for 60 min"
    )
    # Django's own "Internal Server Error" emails for each 500 are left out: README.
    told = [m for m in mail.outbox if "Conversions API" in m.subject]
    assert [m.subject for m in told] == [
        "[Django] Conversions API: due events waiting for pixel test-pixel"
    ]
    assert PixelAlert.objects.get(pixel_id="test-pixel").condition == "stale"


def test_no_key_makes_it_unavailable_and_is_described_never_shown(
    client: Client, make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = f" {KEY}"
    make_events(1)

    code, line = probe(client)

    assert code == 500
    assert line == (
        "Unavailable: Pixel test-pixel has events waiting that cannot be sent: no "
        + "usable Conversions API key (or another setting every request needs)."
    )
    assert "TOPSECRET" not in client.get("/health/application/").content.decode()


def test_failed_events_pass_unless_fail_on_error(
    client: Client, make_events: MakeEvents
) -> None:
    make_events(2, status=Status.FAILED)

    assert probe(client) == (200, "OK")
    code, line = probe(client, "/health/strict/")
    assert code == 500
    assert line == (
        "Warning: Pixel test-pixel: 2 failed in the last 24 hours; they will not "
        + "be sent."
    )


def test_pixels_limits_what_it_checks(
    client: Client, fake: FakeConversionsAPI, make_events: MakeEvents
) -> None:
    make_events(1, pixel_id="other-pixel", prefix="o")
    make_events(1)
    fake.revoke_key(KEY)
    send_pending(pixel_ids=["test-pixel"])

    assert probe(client, "/health/other-pixel/") == (200, "OK")
    assert probe(client)[0] == 500


def test_the_status_page_shows_the_problem(
    client: Client, make_events: MakeEvents
) -> None:
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=3))

    response = client.get("/health/application/", HTTP_ACCEPT="text/html")

    assert response.status_code == 500
    page = response.content.decode()
    assert "OpenAIConversions(pixels=None" in page
    assert "Events of pixel test-pixel have been due for 3 h 0 min" in page


def test_its_result_is_the_package_s_result(make_events: MakeEvents) -> None:
    make_events(1, next_attempt_at=timezone.now() - timedelta(hours=3))

    healthy = async_to_sync(OpenAIConversions(pixels=["other-pixel"]).get_result)()
    stale = async_to_sync(OpenAIConversions().get_result)()

    assert healthy.error is None
    assert isinstance(stale.error, ServiceUnavailable)
    assert stale.error.message.startswith("Events of pixel test-pixel have been due")


def test_manage_py_check_is_clean_with_the_package() -> None:
    call_command("check", fail_level="WARNING")
    assert check_health_check() == []


def test_without_the_package_the_system_check_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # How Python sees a package that is not installed: its import fails.
    monkeypatch.setitem(sys.modules, "health_check.base", None)

    (error,) = check_health_check()

    assert isinstance(error, checks.Error)
    assert error.id == "django_openai_capi.health_check.E001"
    assert "django-health-check" in error.msg
    assert "pip install 'django-health-check>=4.8'" in str(error.hint)


def test_without_its_app_the_system_check_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed = apps.is_installed
    monkeypatch.setattr(
        apps, "is_installed", lambda name: name != "health_check" and installed(name)
    )

    (warning,) = check_health_check()

    assert isinstance(warning, checks.Warning)
    assert warning.id == "django_openai_capi.health_check.W001"
