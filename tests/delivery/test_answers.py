"""What an answer means: its cause, what delivery does with it, and how it is filed."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
import responses

from django_openai_capi.api.responses import ApiErrorBody, ErrorDetail
from django_openai_capi.delivery.answers import (
    OUTCOME_KIND,
    Answer,
    Cause,
    Verdict,
    ask,
)
from django_openai_capi.models import DeliveryBatch, ErrorKind
from django_openai_capi.testing.errors import (
    AUTH_BACKEND_FAILURE,
    MISSING_PID,
    MISSING_SCOPE,
    UNAUTHORIZED,
    UNKNOWN_PID,
)
from tests.outbox import ENDPOINT, body_of

Outcome = DeliveryBatch.Outcome


def answer(status: int | None, message: str | None = None, **fields: Any) -> Answer:
    """An answer as ``ask`` makes it: the API's envelope when *message* is given."""
    error = None if message is None else ApiErrorBody(message)
    text = "" if status is None or status < 300 else f"HTTP {status}: {message or ''}"
    return Answer(status=status, error=error, text=text, **fields)


@pytest.mark.parametrize(
    ("given", "cause", "verdict", "kind", "outcome"),
    [
        (answer(200), Cause.ACCEPTED, Verdict.ACCEPTED, None, Outcome.ACCEPTED),
        (answer(204), Cause.ACCEPTED, Verdict.ACCEPTED, None, Outcome.ACCEPTED),
        *(
            (
                answer(status, "Invalid event."),
                Cause.EVENTS_REFUSED,
                Verdict.REJECTED,
                ErrorKind.REJECTED,
                Outcome.REJECTED,
            )
            for status in (400, 413, 422)
        ),
        (
            answer(413),
            Cause.EVENTS_REFUSED,
            Verdict.REJECTED,
            ErrorKind.REJECTED,
            Outcome.REJECTED,
        ),
        (
            answer(400, MISSING_PID),
            Cause.REQUEST_REFUSED,
            Verdict.REJECTED,
            ErrorKind.REQUEST,
            Outcome.REQUEST_REFUSED,
        ),
        # A proxy's page: nothing against any event.
        (
            answer(400),
            Cause.NOT_THE_API,
            Verdict.RETRY,
            ErrorKind.REJECTED,
            Outcome.REJECTED,
        ),
        (
            answer(401, UNAUTHORIZED),
            Cause.UNAUTHORIZED,
            Verdict.HALT,
            ErrorKind.AUTH,
            Outcome.AUTH_ERROR,
        ),
        (
            answer(401, MISSING_SCOPE),
            Cause.MISSING_SCOPE,
            Verdict.HALT,
            ErrorKind.AUTH,
            Outcome.AUTH_ERROR,
        ),
        # Whatever its wording's case: verify and the worker read it alike.
        (
            answer(401, "missing scope: ads.third_party_events.write"),
            Cause.MISSING_SCOPE,
            Verdict.HALT,
            ErrorKind.AUTH,
            Outcome.AUTH_ERROR,
        ),
        (
            answer(403, UNKNOWN_PID),
            Cause.UNKNOWN_PIXEL,
            Verdict.HALT,
            ErrorKind.AUTH,
            Outcome.AUTH_ERROR,
        ),
        (
            answer(404),
            Cause.WRONG_ENDPOINT,
            Verdict.HALT,
            ErrorKind.UNEXPECTED,
            Outcome.UNEXPECTED,
        ),
        (
            answer(301),
            Cause.WRONG_ENDPOINT,
            Verdict.HALT,
            ErrorKind.UNEXPECTED,
            Outcome.UNEXPECTED,
        ),
        (
            answer(408),
            Cause.SERVER_ERROR,
            Verdict.RETRY,
            ErrorKind.SERVER,
            Outcome.RETRY,
        ),
        (
            answer(429, retry_after=7.0),
            Cause.RATE_LIMITED,
            Verdict.RETRY,
            ErrorKind.RATE_LIMITED,
            Outcome.RATE_LIMITED,
        ),
        (
            answer(503, "Service unavailable"),
            Cause.SERVER_ERROR,
            Verdict.RETRY,
            ErrorKind.SERVER,
            Outcome.RETRY,
        ),
        (
            answer(503, AUTH_BACKEND_FAILURE),
            Cause.AUTH_OUTAGE,
            Verdict.RETRY,
            ErrorKind.SERVER,
            Outcome.RETRY,
        ),
        (
            answer(None),
            Cause.NO_RESPONSE,
            Verdict.RETRY,
            ErrorKind.NETWORK,
            Outcome.NETWORK_ERROR,
        ),
    ],
    ids=lambda value: value.text if isinstance(value, Answer) else None,
)
def test_what_each_answer_means(
    given: Answer,
    cause: Cause,
    verdict: Verdict,
    kind: ErrorKind | None,
    outcome: str,
) -> None:
    assert given.cause is cause
    assert given.verdict is verdict
    assert (given.accepted, given.refused, given.retry, given.halts) == (
        verdict is Verdict.ACCEPTED,
        verdict is Verdict.REJECTED,
        verdict is Verdict.RETRY,
        verdict is Verdict.HALT,
    )
    assert given.request_fault is (cause is Cause.REQUEST_REFUSED)
    assert given.kind == kind
    assert given.outcome == outcome
    if kind is not None:
        # The status page files the request under the kind its events got.
        assert OUTCOME_KIND[outcome] == kind


def test_every_failed_outcome_is_filed_under_a_kind_and_a_refused_request_as_one() -> (
    None
):
    failed = {outcome for outcome in DeliveryBatch.Outcome if outcome != "accepted"}

    assert set(OUTCOME_KIND) == failed
    assert OUTCOME_KIND[DeliveryBatch.Outcome.REQUEST_REFUSED] is ErrorKind.REQUEST


def test_a_refusal_blames_the_events_it_names_within_the_request() -> None:
    error = ApiErrorBody(
        "Invalid events.",
        details=(
            ErrorDetail("bad", "events[1].data", None),
            ErrorDetail("bad", "events[7]", None),
        ),
    )

    assert Answer(status=400, error=error).blamed(5) == {1}
    assert Answer(status=400, error=error).blamed(8) == {1, 7}
    # Only a refusal blames: the same words in an outage's answer name nobody.
    assert Answer(status=503, error=error).blamed(8) == set()
    assert Answer(status=400).blamed(8) == set()


def test_the_message_is_the_apis_or_why_no_answer_came() -> None:
    assert answer(401, UNAUTHORIZED).message == UNAUTHORIZED
    assert Answer(status=502, text="HTTP 502: <html>").message == "<html>"
    assert Answer(status=None, text="No response: timed out").message == "timed out"
    assert Answer(status=200).message == ""


def test_a_message_quotes_the_request_id_when_there_is_one() -> None:
    assert Answer(status=500, request_id="req_1").quoting_request_id("Failed") == (
        "Failed (request req_1)"
    )
    assert Answer(status=500).quoting_request_id("Failed") == "Failed"


def test_ask_makes_one_request_and_reads_its_answer(
    api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-secret-123"
    api.post(
        ENDPOINT,
        status=400,
        json={"error": {"message": "bad key sk-secret-123", "param": "events[0]"}},
        headers={"x-request-id": "req_9", "Retry-After": "3"},
    )

    got = ask("test-pixel", ['{"id": "a"}'], validate_only=True)

    assert (got.status, got.request_id, got.retry_after, got.blamed(1)) == (
        400,
        "req_9",
        3.0,
        {0},
    )
    assert got.text.startswith("HTTP 400: bad key ") and "sk-secret" not in got.text
    assert body_of(api.calls[0])["validate_only"] is True


def test_ask_keeps_a_body_that_is_not_the_apis_redacted_and_short(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, status=502, body="x" * 2000)
    api.post(ENDPOINT, status=502, body="")

    long = ask("test-pixel", ["{}"], validate_only=False)
    empty = ask("test-pixel", ["{}"], validate_only=False)

    assert long.error is None and len(long.text) < 600
    assert empty.text == "HTTP 502: (empty body)"


@pytest.mark.parametrize(
    ("status", "body", "text", "message"),
    [
        # The API's own words, in its envelope: the status is said once.
        (
            403,
            {"error": {"message": "403: unknown pid", "type": "server_error"}},
            "HTTP 403: unknown pid",
            "unknown pid",
        ),
        (
            503,
            {"error": {"message": "503: Authentication backend failure"}},
            "HTTP 503: Authentication backend failure",
            "Authentication backend failure",
        ),
        # The envelope without a status in its message is shown as it is.
        (401, {"error": {"message": "Unauthorized"}}, "HTTP 401: Unauthorized", None),
        # A proxy's plain page, with and without a colon, or with "HTTP".
        (502, "502 Bad Gateway", "HTTP 502: Bad Gateway", "Bad Gateway"),
        (504, "HTTP 504 - Gateway Timeout", "HTTP 504: Gateway Timeout", None),
        (500, "500:oops", "HTTP 500: oops", "oops"),
        # Another status than the answer's is a word of the body, kept.
        (503, "500: upstream failed", "HTTP 503: 500: upstream failed", None),
        # A number that merely starts with the status, and a body that is only it.
        (413, "4130 events is too many", "HTTP 413: 4130 events is too many", None),
        # The status as the message's own number, before words that are not a
        # reason phrase: kept, or the message would lose its subject.
        (413, "413 events is too many", "HTTP 413: 413 events is too many", None),
        (
            400,
            "400 of 1000 events are invalid",
            "HTTP 400: 400 of 1000 events are invalid",
            None,
        ),
        (503, "http 503 down", "HTTP 503: down", "down"),
        (502, "502", "HTTP 502: 502", None),
        (502, "502: ", "HTTP 502: 502: ", None),
        (502, "<html><title>502 Bad Gateway</title>", None, None),
    ],
)
def test_an_answer_says_its_status_once(
    api: responses.RequestsMock,
    status: int,
    body: Any,
    text: str | None,
    message: str | None,
) -> None:
    if isinstance(body, dict):
        api.post(ENDPOINT, status=status, json=body)
    else:
        api.post(ENDPOINT, status=status, body=body)

    got = ask("test-pixel", ["{}"], validate_only=False)

    expected = text or f"HTTP {status}: {body}"
    assert got.text == expected
    assert got.message == (message or expected.partition(": ")[2])


def test_ask_turns_no_answer_into_an_answer_without_a_status(
    api: responses.RequestsMock,
) -> None:
    api.post(ENDPOINT, body=requests.ConnectionError("refused"))

    got = ask("test-pixel", ["{}"], validate_only=False)

    assert got.status is None and got.cause is Cause.NO_RESPONSE
    assert got.text.startswith("No response: ")


def test_ask_never_raises_for_a_failure_before_the_answer(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OPENAI_CAPI_API_KEY = None

    with caplog.at_level(logging.ERROR, "django_openai_capi.delivery"):
        got = ask("test-pixel", ["{}"], validate_only=False)

    assert got.cause is Cause.NO_RESPONSE
    assert "OPENAI_CAPI_API_KEY" in got.text
    assert "Sending to pixel test-pixel failed" in caplog.text
