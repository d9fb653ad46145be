"""What a person is told about an answer: delivery's short advice, verify's fuller one."""

from __future__ import annotations

from typing import Any

import pytest

from django_openai_capi.api.responses import ApiErrorBody
from django_openai_capi.delivery.advice import (
    EVENTS_JUDGED,
    TEMPORARY,
    explain,
    what_to_do,
)
from django_openai_capi.delivery.answers import Answer
from django_openai_capi.delivery.verification import Diagnosis, diagnose
from django_openai_capi.testing.errors import (
    AUTH_BACKEND_FAILURE,
    MISSING_PID,
    MISSING_SCOPE,
    UNAUTHORIZED,
    UNKNOWN_PID,
)


def answer(
    status: int | None,
    message: str | None = None,
    *,
    param: str | None = None,
    **fields: Any,
) -> Answer:
    """An answer as ``ask`` makes it: the API's envelope when *message* is given."""
    if status is None:
        return Answer(status=None, text=f"No response: {message}", **fields)
    error = None if message is None else ApiErrorBody(message, param=param)
    text = "" if status < 300 else f"HTTP {status}: {message or '<html>'}"
    return Answer(status=status, error=error, text=text, **fields)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (answer(401, MISSING_SCOPE), "Create a Conversions API key in Ads Manager"),
        (answer(401, UNAUTHORIZED), "it may have been revoked: create a new key"),
        (answer(403, UNKNOWN_PID), "Check the Pixel ID"),
        (answer(404), "Check OPENAI_CAPI_ENDPOINT: it should be https://bzr"),
        (answer(400, MISSING_PID), "without its pid query parameter"),
        (
            answer(400, "Invalid integration_source.", param="integration_source"),
            "Check OPENAI_CAPI_INTEGRATION_SOURCE, or set it to None.",
        ),
        (answer(503, AUTH_BACKEND_FAILURE), TEMPORARY),
        (answer(None, "timed out"), TEMPORARY),
        (answer(400, "Invalid event.", param="events[0]"), EVENTS_JUDGED),
    ],
    ids=lambda value: value.cause.value if isinstance(value, Answer) else None,
)
def test_the_advice_for_each_cause(given: Answer, words: str) -> None:
    assert words in what_to_do(given)


def test_a_refusal_isolation_found_to_be_the_requests_is_advised_as_one() -> None:
    unnamed = answer(400, "Invalid request.")

    advice = what_to_do(unnamed, request_fault=True)

    assert advice.startswith("Not the events' fault")
    assert "report it to ads-support@openai.com with the request id" in advice
    # A refused key is a refused key, whatever isolation concluded.
    assert what_to_do(answer(401, UNAUTHORIZED), request_fault=True).startswith(
        "Check OPENAI_CAPI_API_KEY"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (answer(200), Diagnosis.WORKS),
        (answer(401, MISSING_SCOPE), Diagnosis.MISSING_SCOPE),
        (answer(401, UNAUTHORIZED, request_id="req_1"), Diagnosis.UNAUTHORIZED),
        (answer(403, UNKNOWN_PID), Diagnosis.UNKNOWN_PIXEL),
        (
            answer(503, AUTH_BACKEND_FAILURE, request_id="req_1"),
            Diagnosis.AUTH_OUTAGE,
        ),
        (answer(503, AUTH_BACKEND_FAILURE), Diagnosis.AUTH_OUTAGE),
        (answer(502), Diagnosis.TEMPORARY),
        (answer(500, "Internal error", request_id="req_1"), Diagnosis.TEMPORARY),
        (answer(429, "Slow down", retry_after=30.0), Diagnosis.RATE_LIMITED),
        (answer(429, "Slow down"), Diagnosis.RATE_LIMITED),
        (answer(400, MISSING_PID), Diagnosis.REQUEST_REFUSED),
        (answer(400, "Invalid request."), Diagnosis.REQUEST_REFUSED),
        (answer(413), Diagnosis.REQUEST_REFUSED),
        (answer(400), Diagnosis.EVENT_REFUSED),
        (
            answer(400, "Invalid event.", param="events[0]", request_id="req_1"),
            Diagnosis.EVENT_REFUSED,
        ),
        (
            answer(422, "timestamp too old", param="events[0].timestamp_ms"),
            Diagnosis.EVENT_REFUSED,
        ),
        (answer(404), Diagnosis.WRONG_ENDPOINT),
        (answer(None, "timed out"), Diagnosis.NO_RESPONSE),
    ],
    ids=lambda value: getattr(value, "value", None) or f"{value.status}",
)
def test_verify_diagnoses_each_answer_in_the_words_its_cause_is_explained_in(
    given: Answer, expected: Diagnosis
) -> None:
    explanation = explain(given, pixel="px-1", key_setting="OPENAI_CAPI_API_KEY")

    diagnosis, *words = diagnose(given, pixel="px-1", key_setting="OPENAI_CAPI_API_KEY")

    assert diagnosis is expected
    assert words == [explanation.summary, explanation.advice]
