"""The HTTP client, the reading of error bodies, and the retry arithmetic."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses

from django_openai_capi import client
from django_openai_capi.api.responses import (
    ApiErrorBody,
    ErrorDetail,
    event_index,
    parse_error,
)
from django_openai_capi.delivery.answers import Answer
from django_openai_capi.delivery.isolation import (
    Refused,
    Stopped,
    isolate,
    isolation_budget,
)
from django_openai_capi.delivery.policy import retry_delay
from django_openai_capi.exceptions import CapiConfigurationError, TransportError
from django_openai_capi.testing.errors import MISSING_PID
from tests.outbox import ENDPOINT


def test_a_response_keeps_status_body_request_id_and_retry_after(
    api: responses.RequestsMock,
) -> None:
    api.post(
        ENDPOINT,
        status=429,
        body="wait",
        headers={"x-request-id": "req_1", "Retry-After": "7"},
    )

    response = client.post_events("test-pixel", b"{}")

    assert (
        response.status,
        response.body,
        response.request_id,
        response.retry_after,
    ) == (429, b"wait", "req_1", 7.0)
    assert not response.ok and response.text() == "wait"


def test_a_transport_failure_never_quotes_the_key(
    api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-secret-123"
    api.post(
        ENDPOINT, body=requests.ConnectTimeout("timed out; header Bearer sk-secret-123")
    )

    with pytest.raises(TransportError) as caught:
        client.post_events("test-pixel", b"{}")

    assert "sk-secret-123" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is not None


def test_a_pixel_without_a_key_is_a_configuration_error(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    with pytest.raises(CapiConfigurationError, match="OPENAI_CAPI_API_KEY"):
        client.post_events("test-pixel", b"{}")


def test_each_thread_has_its_own_pooled_session() -> None:
    mine = client.session()
    theirs: list[requests.Session] = []
    thread = threading.Thread(target=lambda: theirs.append(client.session()))
    thread.start()
    thread.join()

    assert client.session() is mine
    assert theirs[0] is not mine


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Sun, 22 Nov 2026 10:00:30 GMT", 30.0),
        ("Sun, 22 Nov 2026 09:00:00 GMT", 0.0),
        ("Sun, 22 Nov 2026 10:00:30", 30.0),
        ("soon", None),
        ("-3", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date(
    header: str | None, seconds: float | None
) -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert client.parse_retry_after(header, now=now) == seconds


def test_retry_after_as_a_date_is_measured_from_the_clock() -> None:
    assert client.parse_retry_after("Sun, 01 Nov 2026 10:00:30 GMT") == 0.0


def test_the_error_envelope_names_the_blamed_events() -> None:
    error = parse_error(
        b'{"error": {"message": "Invalid event at events[1].", "type": "invalid_request_error",'
        b' "param": "events[1]", "code": "invalid_event", "errors": [{"message": "m",'
        b' "param": "events[1].data.type", "code": "c"}, "junk", {"message": "n", "param": null}]}}'
    )

    assert error is not None
    assert list(error.event_indexes()) == [1]
    assert error.describe(1) == "events[1].data.type: m [c]"
    assert (
        error.describe(5)
        == error.describe()
        == "Invalid event at events[1]. [invalid_event]"
    )


def test_a_top_level_param_alone_blames_its_event() -> None:
    error = parse_error(
        b'{"error": {"message": "too old", "param": "events[0].timestamp_ms"}}'
    )

    assert error is not None
    assert error.describe(0) == "events[0].timestamp_ms: too old"


@pytest.mark.parametrize(
    "body",
    [b"<html>502</html>", b"[]", b'{"error": "x"}', b'{"error": {"message": 3}}', b""],
)
def test_anything_else_is_not_an_error_envelope(body: bytes) -> None:
    assert parse_error(body) is None


@pytest.mark.parametrize(
    ("param", "index"),
    [
        ("events[3]", 3),
        ("events[12].data", 12),
        ("events", None),
        (None, None),
        ("x.events[1]", None),
    ],
)
def test_event_index(param: str | None, index: int | None) -> None:
    assert event_index(param) == index


def test_the_wait_doubles_to_its_cap_with_jitter_in_the_upper_half(
    settings: Any,
) -> None:
    settings.OPENAI_CAPI_RETRY_BACKOFF = 10.0
    settings.OPENAI_CAPI_RETRY_BACKOFF_MAX = 100.0

    def wait(failures: int, jitter: float, **kwargs: Any) -> float:
        return retry_delay(failures, jitter=lambda: jitter, **kwargs).total_seconds()

    assert [wait(n, 1.0) for n in (1, 2, 3, 4, 5, 10_000)] == [10, 20, 40, 80, 100, 100]
    assert wait(1, 0.0) == 5.0
    assert wait(1, 0.0, retry_after=60) == 60.0
    assert (
        wait(1, 0.0, retry_after=10**9) == 100.0
    )  # a broken header cannot park events for ever
    assert retry_delay(0).total_seconds() <= 10


def test_the_isolation_budget_allows_bisecting_a_few_bad_events() -> None:
    assert isolation_budget(1) == 12
    assert isolation_budget(1000) == 48


REFUSED = ApiErrorBody(message="no")


def test_a_400_without_the_apis_error_envelope_is_retried_not_isolated() -> None:
    steps = list(isolate([1, 2], lambda group: Answer(status=400, text="<html>")))

    assert len(steps) == 1 and isinstance(steps[0], Stopped)


def test_isolating_sends_the_good_events_and_refuses_each_bad_one() -> None:
    sent: list[list[int]] = []

    def post(group: Any) -> Answer:
        sent.append(list(group))
        return (
            Answer(status=400, error=REFUSED, text="HTTP 400: no")
            if 3 in group
            else Answer(status=200)
        )

    steps = list(isolate(list(range(8)), post))

    refused = [step for step in steps if isinstance(step, Refused)]
    assert [(step.event, step.message, step.too_old) for step in refused] == [
        (3, "no", False)
    ]
    assert sent[0] == list(range(8)) and [3] in sent


def test_nothing_to_isolate_sends_nothing() -> None:
    assert list(isolate([], lambda group: Answer(status=200))) == []


def test_a_stop_carries_every_event_not_yet_sent() -> None:
    answers = iter([Answer(status=400, error=REFUSED), Answer(status=503)])

    steps = list(isolate([1, 2, 3, 4], lambda group: next(answers)))

    assert len(steps) == 1 and isinstance(steps[0], Stopped)
    assert sorted(steps[0].events) == [1, 2, 3, 4]
    assert steps[0].answer is not None and steps[0].answer.status == 503


def test_a_stop_for_the_budget_has_no_answer() -> None:
    steps = list(
        isolate([1, 2], lambda group: Answer(status=400, error=REFUSED), budget=1)
    )

    assert len(steps) == 1 and isinstance(steps[0], Stopped)
    assert (sorted(steps[0].events), steps[0].answer) == ([1, 2], None)


@pytest.mark.parametrize(
    ("error", "names_the_request"),
    [
        # The API's answer to a request that lost its ?pid= (observed).
        (ApiErrorBody(MISSING_PID), True),
        (ApiErrorBody('[{"loc": ["header", "authorization"], "msg": "x"}]'), True),
        (ApiErrorBody("[{'loc': ('body', 'integration_source'), 'msg': 'x'}]"), True),
        (ApiErrorBody("Invalid.", param="integration_source"), True),
        (ApiErrorBody("Invalid.", param="pid"), True),
        # Inside the events, or nowhere in particular: for the events to show.
        (ApiErrorBody("[{'loc': ('body', 'events', 0, 'data'), 'msg': 'x'}]"), False),
        (ApiErrorBody("[{'loc': ('body',), 'msg': 'Invalid JSON'}]"), False),
        (ApiErrorBody("Invalid event.", param="events[2].data"), False),
        (ApiErrorBody("Invalid event.", param="data.type"), False),
        (ApiErrorBody("Invalid event."), False),
        (
            ApiErrorBody(
                MISSING_PID,
                details=(ErrorDetail("Invalid event.", "events[0]", None),),
            ),
            False,
        ),
    ],
    ids=[
        "missing pid",
        "a header",
        "a body field beside the events",
        "param integration_source",
        "param pid",
        "an event's field",
        "an unparsed body",
        "param naming an event",
        "param of an unnumbered event's field",
        "nothing named",
        "the request and an event",
    ],
)
def test_an_error_naming_only_the_requests_own_fields_names_the_request(
    error: ApiErrorBody, names_the_request: bool
) -> None:
    assert error.names_the_request() is names_the_request


def test_an_error_naming_the_request_stops_at_once_as_a_request_fault() -> None:
    calls: list[int] = []

    def post(group: Sequence[int]) -> Answer:
        calls.append(len(group))
        return Answer(status=400, error=ApiErrorBody(MISSING_PID))

    (step,) = isolate(range(10), post)

    assert isinstance(step, Stopped) and step.request_fault
    assert list(step.events) == list(range(10))
    assert calls == [10]


def test_an_index_beyond_the_batch_is_not_trusted() -> None:
    error = parse_error(b'{"error": {"message": "x", "param": "events[9]"}}')
    answers = iter(
        [Answer(status=400, error=error), Answer(status=200), Answer(status=200)]
    )

    steps = list(isolate([1, 2], lambda group: next(answers)))

    assert [type(step).__name__ for step in steps] == ["Accepted", "Accepted"]


def test_timedelta_results_are_timedeltas() -> None:
    assert isinstance(retry_delay(1), timedelta)


def test_a_request_too_large_is_split_and_an_event_too_large_alone_fails() -> None:
    def post(group: Any) -> Answer:
        if len(group) > 1 or group == [2]:
            return Answer(status=413, text="HTTP 413: too large")
        return Answer(status=200)

    steps = list(isolate([1, 2, 3], post))

    refused = [step for step in steps if isinstance(step, Refused)]
    assert [(step.event, step.message) for step in refused] == [
        (2, "HTTP 413: too large")
    ]
