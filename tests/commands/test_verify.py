"""``openai_capi_verify`` says plainly whether the key and pixel work, and what to do if not.

Every answer the API is known to give has its own advice; the key never appears in
what the command prints, whatever the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
import responses
from django.test import override_settings
from django.utils import timezone

from django_openai_capi.delivery.verification import (
    Diagnosis,
    shown_endpoint,
    verify,
)
from django_openai_capi.models import ErrorKind, PixelPause
from django_openai_capi.testing import FakeConversionsAPI
from tests.commands.conftest import Output, Run

pytestmark = pytest.mark.django_db

ENDPOINT = "http://127.0.0.1:9/v1/events"
KEY = "sk-svcacct-TOPSECRET-verify-0123456789"
OTHER_KEY = "sk-svcacct-OTHERSECRET-9876543210"
REQUEST_ID = "dab411fb-f62b-4203-82f5-8056b0aeb498"

UNAUTHORIZED = {
    "error": {
        "message": "Unauthorized",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}
MISSING_SCOPE = {
    "error": {
        "message": "You have insufficient permissions for this operation. Missing "
        "scopes: ads.third_party_events.write. Check that you have the correct role in "
        "your organization, and if you're using a restricted API key, that it has the "
        "necessary scopes.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}
UNKNOWN_PID = {
    "error": {
        "message": "403: unknown pid",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}
AUTH_BACKEND_FAILURE = {
    "error": {
        "message": "503: Authentication backend failure",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}


@pytest.fixture(autouse=True)
def key(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY
    settings.OPENAI_CAPI_ENDPOINT = ENDPOINT


@pytest.fixture
def api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


def answer(
    api: responses.RequestsMock,
    status: int,
    body: object = None,
    *,
    request_id: str | None = REQUEST_ID,
    **headers: str,
) -> None:
    if request_id is not None:
        headers["x-request-id"] = request_id
    if isinstance(body, str):
        api.post(ENDPOINT, status=status, body=body, headers=headers)
    else:
        api.post(ENDPOINT, status=status, json=body or {}, headers=headers)


def printed(output: Output) -> str:
    """Everything a person would see: stdout, stderr and the error's message."""
    return output.stdout + output.stderr + output.error


def assert_no_key(output: Output) -> None:
    assert KEY not in printed(output)
    assert OTHER_KEY not in printed(output)
    assert "TOPSECRET" not in printed(output)


# It works.


def test_a_working_key_and_pixel_are_confirmed_with_the_request_id(
    api: responses.RequestsMock, run: Run
) -> None:
    answer(api, 200, {"accepted_events": 1})

    output = run("openai_capi_verify")

    text = printed(output)
    assert "OK: The key and pixel work" in text
    assert f"request id {REQUEST_ID}" in text
    assert "Endpoint: http://127.0.0.1:9/v1/events" in text
    assert "Pixel:    test-pixel" in text
    assert "from OPENAI_CAPI_API_KEY (not shown)" in text
    assert "validate_only requests do not appear in event monitoring" in text
    assert_no_key(output)


def test_the_check_is_one_valid_validate_only_event_with_a_fresh_id(
    api: responses.RequestsMock, run: Run
) -> None:
    answer(api, 200)
    answer(api, 200)

    run("openai_capi_verify")
    run("openai_capi_verify")

    first, second = (call.request for call in api.calls)
    body = json.loads(first.body or "")
    assert body["validate_only"] is True
    [event] = body["events"]
    assert event["type"] == "page_viewed"
    assert event["data"] == {"type": "contents"}
    assert event["action_source"] == "web"
    assert event["source_url"].startswith("https://")
    assert event["id"].startswith("openai-capi-verify-")
    assert abs(event["timestamp_ms"] - timezone.now().timestamp() * 1000) < 60_000
    assert event["id"] != json.loads(second.body or "")["events"][0]["id"]
    assert "pid=test-pixel" in (first.url or "")
    assert first.headers["Authorization"] == f"Bearer {KEY}"


def test_the_fake_api_accepts_the_test_event_over_real_http(
    run: Run, settings: Any
) -> None:
    with FakeConversionsAPI(api_key=KEY, pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        output = run("openai_capi_verify")

    [request] = fake.requests
    assert request.status == 200
    assert request.validate_only
    assert fake.accepted == {}  # validate_only: nothing recorded
    assert f"request id {request.request_id}" in output.stdout
    assert_no_key(output)


def test_another_pixel_is_checked_with_its_own_key(
    api: responses.RequestsMock, run: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"other-pixel": OTHER_KEY}
    answer(api, 200)

    output = run("openai_capi_verify", "--pixel", "other-pixel")

    request = api.calls[0].request
    assert "pid=other-pixel" in (request.url or "")
    assert request.headers["Authorization"] == f"Bearer {OTHER_KEY}"
    assert "from OPENAI_CAPI_PIXEL_API_KEYS['other-pixel'] (not shown)" in output.stdout
    assert_no_key(output)


def test_the_kill_switch_does_not_stop_the_check_but_is_mentioned(
    api: responses.RequestsMock, run: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_SEND_ENABLED = False
    settings.OPENAI_CAPI_VALIDATE_ONLY = True
    answer(api, 200)

    output = run("openai_capi_verify")

    assert len(api.calls) == 1
    assert "OPENAI_CAPI_SEND_ENABLED is False" in output.stdout
    assert "OPENAI_CAPI_VALIDATE_ONLY is True" in output.stdout
    assert "OK: The key and pixel work" in output.stdout


def pause(pixel_id: str = "test-pixel") -> PixelPause:
    return PixelPause.objects.create(
        pixel_id=pixel_id,
        paused_until=timezone.now() + timedelta(hours=2),
        failures=3,
        reason=ErrorKind.AUTH,
        http_status=401,
        error="HTTP 401: Unauthorized",
    )


def test_a_passing_check_lifts_the_pause_the_refused_key_had_put_on_the_pixel(
    api: responses.RequestsMock, run: Run
) -> None:
    pause()
    answer(api, 200)

    output = run("openai_capi_verify")

    assert not PixelPause.objects.exists()
    note = " ".join(output.stdout.split())
    assert (
        "Delivery to pixel 'test-pixel' had been paused after HTTP 401 (until "
    ) in note
    assert (
        "); the check shows the pixel works now, so the pause is lifted and its events "
        "go out with the next delivery."
    ) in note
    # Not "the pause is lifted: ... is paused until ...", which contradicts itself.
    assert "is paused" not in note


def test_a_failing_check_leaves_the_pause_and_mentions_it(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    pause()
    answer(api, 401, UNAUTHORIZED)

    output = run_failing("openai_capi_verify")

    assert PixelPause.objects.get().failures == 3
    assert "Also, delivery to pixel 'test-pixel' is paused until" in output.stdout


def test_a_pause_without_a_status_is_described_by_its_reason(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=timezone.now() + timedelta(minutes=5),
        reason=ErrorKind.NETWORK,
    )
    answer(api, 502, "<html>Bad gateway</html>", request_id=None)

    output = run_failing("openai_capi_verify")

    note = " ".join(output.stdout.split())
    assert re.search(
        r"Also, delivery to pixel 'test-pixel' is paused until "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC after network: no response",
        note,
    ), note


def test_a_pause_without_a_status_or_a_reason_is_a_failed_request(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    PixelPause.objects.create(
        pixel_id="test-pixel", paused_until=timezone.now() + timedelta(minutes=5)
    )
    answer(api, 502, "<html>Bad gateway</html>", request_id=None)

    output = run_failing("openai_capi_verify")

    assert " UTC after a failed request" in " ".join(output.stdout.split())


def test_a_pause_whose_reason_this_version_does_not_know_is_described_as_stored(
    api: responses.RequestsMock, run: Run
) -> None:
    # A pause written by a newer version, kept across a downgrade: the check must
    # still run, and lift it.
    PixelPause.objects.create(
        pixel_id="test-pixel",
        paused_until=timezone.now() + timedelta(minutes=5),
        reason="quota",
    )
    answer(api, 200)

    output = run("openai_capi_verify")

    assert " had been paused after quota (until " in " ".join(output.stdout.split())
    assert not PixelPause.objects.exists()


@override_settings(TIME_ZONE="America/Chicago")
def test_a_pause_is_dated_in_utc_whatever_the_time_zone(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    pause()
    answer(api, 401, UNAUTHORIZED)

    output = run_failing("openai_capi_verify")

    assert " UTC after HTTP 401" in " ".join(output.stdout.split())
    assert "CST" not in output.stdout and "CDT" not in output.stdout


# The key or the pixel is refused.


def test_unauthorized_means_a_wrong_or_revoked_key_and_a_new_one_after_an_incident(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 401, UNAUTHORIZED)

    output = run_failing("openai_capi_verify")

    assert "The API refused the key (HTTP 401: Unauthorized)" in output.error
    assert "Ads Manager → Conversions → Manage conversion keys" in output.error
    assert "not the pixel's key and not the Advertiser API key" in output.error
    assert "stopped after an OpenAI incident" in output.error
    assert "create a new Conversions API key" in output.error
    assert "The key in OPENAI_CAPI_API_KEY" in output.error
    assert f"request id {REQUEST_ID}" in output.stdout
    assert "Message:  Unauthorized" in output.stdout
    assert_no_key(output)


def test_missing_scopes_means_an_advertiser_key_instead_of_a_conversions_key(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 401, MISSING_SCOPE)

    output = run_failing("openai_capi_verify")

    assert "lacks the scope ads.third_party_events.write" in output.error
    assert "Advertiser API key" in output.error
    assert "Create a Conversions API key" in output.error
    assert "Manage conversion keys" in output.error
    assert_no_key(output)


def test_an_unknown_pixel_means_a_wrong_pixel_id_or_another_accounts_key(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 403, UNKNOWN_PID)

    output = run_failing("openai_capi_verify")

    assert "does not accept pixel 'test-pixel'" in output.error
    # The status once: not "HTTP 403: 403: unknown pid".
    assert "(HTTP 403: unknown pid)" in output.error
    assert "Message:  unknown pid" in output.stdout
    assert "Check the Pixel ID" in output.error
    assert "OPENAI_CAPI_PIXEL_API_KEYS" in output.error
    assert_no_key(output)


# OpenAI's side fails.


def test_authentication_backend_failure_is_openais_outage_with_nothing_to_change(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 503, AUTH_BACKEND_FAILURE)

    output = run_failing("openai_capi_verify")

    assert "OpenAI's authentication service is failing" in output.error
    assert "not a problem with your key, pixel or events" in output.error
    assert "nothing to change" in output.error
    assert "Events are kept and retried" in output.error
    assert "https://status.openai.com" in output.error
    assert f"quote the request id {REQUEST_ID}" in output.error
    assert "ads-support@openai.com" in output.error
    # The second half of the story: after such an outage, a 401 means a new key.
    assert 'reports 401 "Unauthorized"' in output.error
    assert_no_key(output)


def test_the_outage_advice_does_without_a_request_id(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 503, AUTH_BACKEND_FAILURE, request_id=None)

    output = run_failing("openai_capi_verify")

    assert "request id" not in printed(output)
    assert "ads-support@openai.com" in output.error


def test_the_forum_story_outage_then_unauthorized_then_a_new_key_works(
    run: Run, run_failing: Run, settings: Any
) -> None:
    with FakeConversionsAPI(api_key=KEY, pixels=["test-pixel"]) as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url

        fake.fail_next("auth_backend_failure")
        outage = run_failing("openai_capi_verify")
        fake.revoke_key(KEY)  # the outage invalidated the old key
        unauthorized = run_failing("openai_capi_verify")
        fake.add_key(OTHER_KEY)
        settings.OPENAI_CAPI_API_KEY = OTHER_KEY
        works = run("openai_capi_verify")

    assert "nothing to change" in outage.error
    assert "create a new Conversions API key" in unauthorized.error
    assert "OK: The key and pixel work" in works.stdout
    for output in (outage, unauthorized, works):
        assert_no_key(output)


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_other_server_errors_are_temporary(
    api: responses.RequestsMock, run_failing: Run, status: int
) -> None:
    answer(api, status, {"error": {"message": f"{status}: something broke"}})

    output = run_failing("openai_capi_verify")

    assert f"The API failed on its side (HTTP {status}: something broke)" in (
        output.error
    )
    assert "Usually temporary" in output.error
    assert f"quote the request id {REQUEST_ID}" in output.error


def test_a_server_error_page_that_is_not_json_is_quoted_as_it_is(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 502, "<html>Bad gateway</html>", request_id=None)

    output = run_failing("openai_capi_verify")

    assert "(HTTP 502: <html>Bad gateway</html>)" in output.error
    assert "Answer:   HTTP 502, after" in output.stdout
    assert output.error.endswith("check https://status.openai.com.")


def test_rate_limiting_is_temporary_and_says_how_long_the_api_asked_to_wait(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(
        api,
        429,
        {"error": {"message": "429: Too many requests"}},
        **{"Retry-After": "30"},
    )

    output = run_failing("openai_capi_verify")

    assert "rate-limiting" in output.error
    assert "(it asked for 30 s)" in output.error


def test_rate_limiting_without_retry_after(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 429, {"error": {"message": "429: Too many requests"}})

    output = run_failing("openai_capi_verify")

    assert "retried after the wait the API asks for. " in output.error


# The test event is refused.


def test_a_refused_test_event_is_a_bug_to_report_with_the_request_id(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(
        api,
        400,
        {
            "error": {
                "message": "Invalid event at events[0]. See errors for details.",
                "type": "invalid_request_error",
                "param": "events[0]",
                "code": "invalid_event",
            }
        },
    )

    output = run_failing("openai_capi_verify")

    assert "The API refused the test event (HTTP 400" in output.error
    assert "cannot tell whether the key and pixel work" in output.error
    assert "a bug in the app or a change in the API" in output.error
    assert f"quote the request id {REQUEST_ID}" in output.error


def test_a_refused_test_event_without_request_id(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(
        api,
        400,
        {"error": {"message": "Invalid event at events[0].", "param": "events[0]"}},
        request_id=None,
    )

    output = run_failing("openai_capi_verify")

    assert output.error.endswith("please report it with the message above.")


def test_a_refused_timestamp_points_at_this_machines_clock(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    message = "event_timestamp_ms must be within the last 7 days."
    answer(
        api,
        422,
        {
            "error": {
                "message": message,
                "param": "events[0].timestamp_ms",
                "code": "event_timestamp_too_old",
            }
        },
    )

    output = run_failing("openai_capi_verify")

    assert "check it (NTP)" in output.error


def test_a_refused_integration_source_points_at_its_setting(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 400, {"error": {"message": "integration_source is not allowed here"}})

    output = run_failing("openai_capi_verify")

    assert "Check OPENAI_CAPI_INTEGRATION_SOURCE" in output.error


# No answer, or not the API.


def test_no_answer_on_loopback_points_at_the_local_fake(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    api.post(ENDPOINT, body=requests.ConnectionError("Connection refused"))

    output = run_failing("openai_capi_verify")

    error = " ".join(output.error.split())
    assert "No answer from 127.0.0.1: ConnectionError: Connection refused" in error
    assert (
        "Nothing answers on 127.0.0.1: if OPENAI_CAPI_ENDPOINT is a local fake of the "
        "API (python -m django_openai_capi.testing), start it" in error
    )
    assert "firewall" not in error
    assert "Answer:   no answer, after" in output.stdout
    assert "Endpoint: http://127.0.0.1:9/v1/events" in output.stdout
    assert_no_key(output)


@pytest.mark.parametrize(
    ("endpoint", "scheme"),
    [
        ("https://capi-proxy.example.com/v1/events", "HTTPS"),
        ("http://capi-proxy.internal/v1/events", "HTTP"),
    ],
)
def test_no_answer_from_another_host_points_at_the_endpoint_and_the_network(
    api: responses.RequestsMock,
    run_failing: Run,
    settings: Any,
    endpoint: str,
    scheme: str,
) -> None:
    settings.OPENAI_CAPI_ENDPOINT = endpoint
    api.post(endpoint, body=requests.ConnectionError("Connection refused"))

    output = run_failing("openai_capi_verify")

    error = " ".join(output.error.split())
    host = endpoint.split("/")[2]
    assert f"No answer from {host}: ConnectionError" in error
    assert "Check OPENAI_CAPI_ENDPOINT" in error
    assert f"reach {host} over {scheme}: DNS, an egress firewall or a proxy" in error


def test_an_endpoint_without_a_scheme_gets_no_answer_and_is_shown_as_it_is(
    run_failing: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_ENDPOINT = "bzr.openai.com/v1/events"

    output = run_failing("openai_capi_verify")

    assert "No answer from (no host)" in output.error
    assert "Endpoint: bzr.openai.com/v1/events" in output.stdout


@pytest.mark.parametrize("status", [404, 301, 405])
def test_an_unexpected_answer_means_the_endpoint_is_wrong(
    api: responses.RequestsMock, run_failing: Run, status: int
) -> None:
    answer(api, status, {"error": {"message": "Not found"}})

    output = run_failing("openai_capi_verify")

    assert f"Unexpected answer from the endpoint (HTTP {status}: Not found)" in (
        output.error
    )
    assert "https://bzr.openai.com/v1/events" in output.error


def test_a_key_echoed_in_an_answer_is_never_printed(
    api: responses.RequestsMock, run_failing: Run
) -> None:
    answer(api, 401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})

    output = run_failing("openai_capi_verify")

    assert "Incorrect API key provided: [redacted]" in output.stdout
    assert_no_key(output)


# Nothing to check with.


def test_no_key_says_which_setting_to_set_and_sends_nothing(
    api: responses.RequestsMock, run_failing: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = None

    output = run_failing("openai_capi_verify")

    assert len(api.calls) == 0
    assert "No Conversions API key for pixel 'test-pixel'" in output.error
    assert "set OPENAI_CAPI_API_KEY" in output.error
    assert "OPENAI_CAPI_PIXEL_API_KEYS" in output.error
    assert "Answer:" not in output.stdout


def test_no_pixel_says_which_setting_to_set(run_failing: Run, settings: Any) -> None:
    settings.OPENAI_CAPI_PIXEL_ID = None

    output = run_failing("openai_capi_verify")

    assert "OPENAI_CAPI_PIXEL_ID is not set" in output.error
    assert "--pixel" in output.error
    assert "Pixel:" not in output.stdout
    assert_no_key(output)


def test_a_bad_integration_source_is_reported_before_any_request(
    api: responses.RequestsMock, run_failing: Run, settings: Any
) -> None:
    settings.OPENAI_CAPI_INTEGRATION_SOURCE = "not valid!"

    output = run_failing("openai_capi_verify")

    assert "OPENAI_CAPI_INTEGRATION_SOURCE cannot be sent as it is" in output.error
    assert "integration_source" in output.error


# The library function, as the admin will call it.


def test_verify_returns_a_diagnosis_that_holds_no_key(
    api: responses.RequestsMock,
) -> None:
    answer(api, 401, UNAUTHORIZED)

    result = verify("test-pixel")

    assert not result.ok
    assert result.diagnosis is Diagnosis.UNAUTHORIZED
    assert result.http_status == 401
    assert result.request_id == REQUEST_ID
    assert result.message == "Unauthorized"
    assert result.key_setting == "OPENAI_CAPI_API_KEY"
    assert KEY not in repr(result)


def test_the_endpoint_is_shown_without_credentials_query_or_fragment() -> None:
    assert (
        shown_endpoint("https://user:secret@fake.example:8443/v1/events?token=x#y")
        == "https://fake.example:8443/v1/events"
    )
    assert shown_endpoint("https://bzr.openai.com/v1/events") == (
        "https://bzr.openai.com/v1/events"
    )
