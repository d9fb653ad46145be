"""One rule decides whether an API key can be sent, and everything that reads a key uses it.

``openai_capi_verify`` once passed a key with a leading space that the worker then
refused to send with: the check, the worker, the client and verify must never disagree.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses
from django.core.checks import Error
from hypothesis import given
from hypothesis import strategies as st

from django_openai_capi.checks import check_settings
from django_openai_capi.client import post_events
from django_openai_capi.conf import conf, key_problem
from django_openai_capi.delivery import send_pending
from django_openai_capi.delivery.verification import Diagnosis, verify
from django_openai_capi.exceptions import CapiConfigurationError, UnusableApiKeyError
from django_openai_capi.models import ConversionEvent
from tests.outbox import ENDPOINT, MakeEvents

KEY = "sk-svcacct-RULESECRET0123456789abcdef"

UNUSABLE = {
    "a leading space": " " + KEY,
    "a trailing newline": KEY + "\n",
    "only whitespace": " \t",
    "a space inside": "sk-svcacct RULESECRET",
    "quotes around it": f'"{KEY}"',
    "a control character": KEY + "\x00",
    "non-ASCII letters": "sk-ключ-123",
    "a Latin-1 letter": "sk-clé-123",
}


def key_errors() -> list[str]:
    return [
        message.msg
        for message in check_settings()
        if isinstance(message, Error)
        and message.id
        in {
            "django_openai_capi.E002",
            "django_openai_capi.E004",
        }
    ]


@pytest.mark.parametrize("key", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_verify_the_worker_and_the_check_all_refuse_a_key_that_cannot_be_sent(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any, key: str
) -> None:
    settings.OPENAI_CAPI_API_KEY = key
    settings.OPENAI_CAPI_ENDPOINT = ENDPOINT
    api.post(ENDPOINT, json={})
    make_events(3)

    checked = verify("test-pixel")
    report = send_pending()

    assert not checked.ok
    assert checked.diagnosis is Diagnosis.BAD_SETTING
    assert checked.key_setting == "OPENAI_CAPI_API_KEY"
    assert checked.summary.startswith("OPENAI_CAPI_API_KEY cannot be sent")
    assert report.skipped["test-pixel"] == checked.advice
    assert checked.advice.startswith(
        "OPENAI_CAPI_API_KEY cannot be used as the Conversions API key for pixel "
        "'test-pixel': it "
    )
    assert len(key_errors()) == 1
    assert not api.calls
    assert set(ConversionEvent.objects.values_list("attempts", flat=True)) == {0}
    for text in [checked.summary, checked.advice, report.summary(), *key_errors()]:
        for secret in ("RULESECRET", "ключ", "clé"):
            assert secret not in text


def test_a_pixels_own_key_is_refused_naming_its_entry(
    make_events: MakeEvents, api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = KEY
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"px_other": " " + KEY}
    make_events(1, pixel_id="px_other")

    checked = verify("px_other")
    report = send_pending()

    entry = "OPENAI_CAPI_PIXEL_API_KEYS['px_other']"
    assert checked.key_setting == entry
    assert checked.advice.startswith(f"{entry} cannot be used")
    assert "starts or ends with whitespace" in checked.advice
    assert report.skipped["px_other"] == checked.advice
    assert any(entry in error for error in key_errors())
    assert not api.calls


def test_the_client_refuses_such_a_key_before_sending(
    api: responses.RequestsMock, settings: Any
) -> None:
    settings.OPENAI_CAPI_API_KEY = " " + KEY
    settings.OPENAI_CAPI_ENDPOINT = ENDPOINT

    with pytest.raises(UnusableApiKeyError) as raised:
        post_events("test-pixel", b'{"events": []}')

    assert raised.value.setting == "OPENAI_CAPI_API_KEY"
    assert isinstance(raised.value, CapiConfigurationError)
    assert KEY not in str(raised.value)
    assert not api.calls


@pytest.mark.parametrize(
    "key", [KEY, "sk-proj-abc_DEF.123", "dGVzdA==", "a~b+c/d", "test-key"]
)
def test_a_key_as_openai_issues_it_passes_everywhere(
    api: responses.RequestsMock, settings: Any, db: None, key: str
) -> None:
    settings.OPENAI_CAPI_API_KEY = key
    settings.OPENAI_CAPI_ENDPOINT = ENDPOINT
    api.post(ENDPOINT, json={})

    assert verify("test-pixel").ok
    assert key_errors() == []
    assert api.calls[0].request.headers["Authorization"] == f"Bearer {key}"


@given(st.text(max_size=12))
def test_the_check_refuses_exactly_the_keys_a_request_cannot_carry(key: str) -> None:
    from django.test import override_settings

    with override_settings(OPENAI_CAPI_API_KEY=key, OPENAI_CAPI_PIXEL_API_KEYS={}):
        try:
            conf.api_key_for("test-pixel")
        except CapiConfigurationError:
            refused_at_run_time = True
        else:
            refused_at_run_time = False
        assert bool(key_errors()) == refused_at_run_time
        assert refused_at_run_time == (key_problem(key) is not None)
