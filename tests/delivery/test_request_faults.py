"""A refusal of the request itself (a lost ``pid``) is not the events' fault.

The API answers a request without ``?pid=`` with a 400 that names no event, whatever the
request carries; a broken proxy or API can blame ``events[i]`` past the end of the
request. Neither may dead-letter a backlog: no event fails for them, the pixel pauses,
and the log, the events and ``openai_capi_verify`` say what to fix. A bad event the API
does not name is still found, as long as other events pass alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import responses
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_openai_capi.api.responses import ApiErrorBody
from django_openai_capi.delivery import send_pending
from django_openai_capi.delivery.answers import Answer
from django_openai_capi.delivery.isolation import (
    Accepted,
    Refused,
    Stopped,
    isolate,
    isolation_budget,
)
from django_openai_capi.delivery.validation import Check, validate_pending
from django_openai_capi.delivery.verification import Diagnosis, verify
from django_openai_capi.models import (
    ConversionEvent,
    DeliveryBatch,
    ErrorKind,
    PixelPause,
)
from django_openai_capi.testing import FakeConversionsAPI
from django_openai_capi.testing.errors import MISSING_PID, envelope
from tests.outbox import ENDPOINT, MakeEvents, error_envelope, statuses

Status = ConversionEvent.Status

#: A 400 blaming an event a request of 1,000 (or of one) does not have.
OUT_OF_RANGE = {
    "error": {
        "message": "Invalid event at events[1000]. See errors for details.",
        "type": "invalid_request_error",
        "param": "events[1000]",
        "code": "invalid_event",
    }
}


@pytest.fixture
def fake(settings: Any) -> Iterator[FakeConversionsAPI]:
    with FakeConversionsAPI(api_key="test-key", pixels=["test-pixel"]) as api:
        settings.OPENAI_CAPI_ENDPOINT = api.url
        settings.OPENAI_CAPI_API_KEY = "test-key"
        yield api


def refuse_every_request(fake: FakeConversionsAPI, how: str) -> None:
    if how == "missing pid":
        fake.outage("missing_pid")
    else:
        fake.answer_every_request(400, OUT_OF_RANGE)


# End to end: a backlog of 1,000 under a refusal of every request ---------------------


@pytest.mark.parametrize("how", ["missing pid", "index out of range"])
def test_a_400_that_names_no_event_fails_no_event_and_pauses_the_pixel(
    make_events: MakeEvents,
    fake: FakeConversionsAPI,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    make_events(1000)
    refuse_every_request(fake, how)

    with caplog.at_level(logging.ERROR, "django_openai_capi"):
        report = send_pending()

    # The bound: the claim, its first event alone, its last event alone; the claim
    # alone when the error itself points at the request (its lost pid).
    requests = [1000] if how == "missing pid" else [1000, 1, 1]
    assert [request.event_count for request in fake.requests] == requests
    assert (report.failed, report.sent, report.retried) == (0, 0, 1000)
    events = ConversionEvent.objects.all()
    assert {event.status for event in events} == {Status.PENDING}
    # The claim's attempt is given back: the request, not the events, was refused.
    assert {event.attempts for event in events} == {0}
    assert {event.last_error_kind for event in events} == {ErrorKind.REQUEST}
    pause = PixelPause.objects.get(pixel_id="test-pixel")
    assert pause.reason == ErrorKind.REQUEST
    assert pause.http_status == 400
    assert "test-pixel" in report.paused
    # Each request is recorded as the request's refusal, not as a refused event.
    assert [batch.outcome for batch in DeliveryBatch.objects.all()] == [
        DeliveryBatch.Outcome.REQUEST_REFUSED
    ] * len(requests)
    assert "Not the events' fault" in caplog.text

    again = send_pending()

    assert again.requests == 0
    assert len(fake.requests) == len(requests)


def test_a_lost_pid_says_to_check_the_endpoint_and_proxies_everywhere(
    make_events: MakeEvents,
    fake: FakeConversionsAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_events(5)
    fake.outage("missing_pid")

    with caplog.at_level(logging.ERROR, "django_openai_capi"):
        report = send_pending()
    last_delivery_request = fake.requests[-1].request_id
    checked = verify("test-pixel")

    advice = "The request reached the API without its pid query parameter"
    event = ConversionEvent.objects.first()
    assert event is not None
    assert advice in event.last_error
    assert "('query', 'pid')" in event.last_error
    assert last_delivery_request in event.last_error
    assert advice in PixelPause.objects.get().advice
    assert advice in caplog.text
    assert any(advice in problem for problem in report.problems)
    assert checked.diagnosis is Diagnosis.REQUEST_REFUSED
    assert not checked.ok
    assert advice in checked.advice
    assert "OPENAI_CAPI_ENDPOINT" in checked.advice
    assert "query string" in checked.advice


def test_once_the_request_is_fixed_a_passing_verify_sends_the_held_events_at_once(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(20)
    fake.outage("missing_pid")
    send_pending()
    fake.outage(None)

    assert verify("test-pixel").ok
    report = send_pending()

    assert report.sent == 20
    assert set(statuses().values()) == {Status.SENT}
    assert set(ConversionEvent.objects.values_list("attempts", flat=True)) == {1}


def test_checking_the_backlog_under_a_lost_pid_marks_nothing_refused(
    make_events: MakeEvents, fake: FakeConversionsAPI
) -> None:
    make_events(300)
    fake.outage("missing_pid")

    verdicts = validate_pending()

    assert {verdict.check for verdict in verdicts} == {Check.NOT_CHECKED}
    assert "without its pid query parameter" in verdicts[0].message
    assert len(fake.requests) == 1


def test_only_the_requests_naming_no_event_are_filed_as_the_requests_refusal(
    make_events: MakeEvents, api: responses.RequestsMock
) -> None:
    make_events(3)
    api.post(ENDPOINT, status=400, body=error_envelope(0))
    api.post(ENDPOINT, status=400, json=envelope(MISSING_PID))

    report = send_pending()

    assert (report.failed, report.retried) == (1, 2)
    assert [
        (batch.size, batch.outcome)
        for batch in DeliveryBatch.objects.order_by("created_at")
    ] == [
        (3, DeliveryBatch.Outcome.REJECTED),
        (2, DeliveryBatch.Outcome.REQUEST_REFUSED),
    ]


# A bad event the API does not name is still found ------------------------------------


@pytest.mark.parametrize("bad", ["lead-0", "lead-97", "lead-199"])
def test_a_bad_event_the_api_does_not_name_fails_when_others_pass_alone(
    make_events: MakeEvents, api: responses.RequestsMock, bad: str
) -> None:
    make_events(200)

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = [event["id"] for event in json.loads(request.body)["events"]]
        if bad in ids:
            return 400, {}, error_envelope(None)
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    report = send_pending()

    assert (report.sent, report.failed) == (199, 1)
    assert ConversionEvent.objects.get(event_id=bad).status == Status.FAILED
    assert len(api.calls) <= isolation_budget(200)


def test_a_lone_event_refused_naming_none_waits_and_fails_once_another_passes(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_RETRY_BACKOFF = 0.000001
    settings.OPENAI_CAPI_RETRY_BACKOFF_MAX = 0.000001
    make_events(1, prefix="bad")

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        ids = [event["id"] for event in json.loads(request.body)["events"]]
        if "bad-0" in ids:
            return 400, {}, error_envelope(None)
        return 200, {}, "{}"

    api.add_callback("POST", ENDPOINT, callback=answer)

    alone = send_pending()

    assert (alone.failed, alone.retried) == (0, 1)
    assert ConversionEvent.objects.get().last_error_kind == ErrorKind.REQUEST

    make_events(3, prefix="good")
    together = send_pending()

    assert (together.sent, together.failed) == (3, 1)
    assert statuses() == {
        "bad-0": Status.FAILED,
        "good-0": Status.SENT,
        "good-1": Status.SENT,
        "good-2": Status.SENT,
    }


# The algorithm, tried against every placement of bad events ---------------------------


def refusing(
    bad: set[int], *, named: bool, calls: list[int]
) -> Callable[[Sequence[int]], Answer]:
    def post(group: Sequence[int]) -> Answer:
        calls.append(len(group))
        blamed = [i for i, event in enumerate(group) if event in bad]
        if not blamed:
            return Answer(status=200)
        param = f"events[{blamed[0]}]" if named else None
        return Answer(status=400, error=ApiErrorBody("Invalid event.", param=param))

    return post


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=300).flatmap(
        lambda size: st.tuples(
            st.just(size), st.sets(st.integers(0, size - 1), max_size=3)
        )
    ),
    st.booleans(),
)
def test_isolation_never_fails_an_event_the_api_accepts_alone(
    case: tuple[int, set[int]], named: bool
) -> None:
    size, bad = case
    calls: list[int] = []

    steps = list(isolate(range(size), refusing(bad, named=named, calls=calls)))

    accepted = [e for step in steps if isinstance(step, Accepted) for e in step.events]
    refused = [step.event for step in steps if isinstance(step, Refused)]
    stops = [step for step in steps if isinstance(step, Stopped)]
    stopped = [event for step in stops for event in step.events]
    assert sorted([*accepted, *refused, *stopped]) == list(range(size))
    assert not set(accepted) & bad
    assert set(refused) <= bad
    assert len(calls) <= isolation_budget(size)
    if named or (len(bad) == 1 and size > 1):
        assert (sorted(refused), stops) == (sorted(bad), [])
    if any(step.request_fault for step in stops):
        # Taken for the request's fault only when the first and the last events were
        # both refused alone, naming none, and nothing passed.
        assert {0, size - 1} <= bad
        assert not accepted


@given(st.integers(min_value=1, max_value=1000))
# Two and three: no events between the first and the last, so no half to queue.
@example(2)
@example(3)
def test_when_every_request_is_refused_naming_none_nothing_fails(size: int) -> None:
    calls: list[int] = []
    everything = set(range(size))

    steps = list(isolate(range(size), refusing(everything, named=False, calls=calls)))

    assert len(steps) == 1
    step = steps[0]
    assert isinstance(step, Stopped)
    assert step.request_fault
    assert sorted(step.events) == list(range(size))
    # The bound, whatever the claim's size: the claim, its first event alone, its
    # last event alone (a claim of one has only itself).
    assert calls == ([size, 1, 1] if size > 1 else [1])
