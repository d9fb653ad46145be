from __future__ import annotations

from typing import Any

from django_openai_capi.redaction import (
    REDACTED,
    configured_keys,
    describe_exception,
    redact,
)


def test_every_configured_key_is_replaced(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-main-SECRET"
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {
        "p2": "sk-other-SECRET",
        "p3": "sk-main-SECRET-longer",
    }
    text = "Bearer sk-main-SECRET-longer, then sk-other-SECRET and sk-main-SECRET"
    assert redact(text) == f"Bearer {REDACTED}, then {REDACTED} and {REDACTED}"


def test_a_longer_key_is_not_left_half_exposed_by_a_shorter_one(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = "abc"
    settings.OPENAI_CAPI_PIXEL_API_KEYS = {"p": "abcdef"}
    assert configured_keys() == ["abcdef", "abc"]
    assert redact("abcdef") == REDACTED


def test_no_keys_and_a_malformed_setting_leave_text_alone(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = None
    settings.OPENAI_CAPI_PIXEL_API_KEYS = ["not", "a", "dict"]
    assert redact("nothing to hide") == "nothing to hide"


def test_long_text_is_cut(settings: Any) -> None:
    assert redact("x" * 50, limit=10) == "x" * 9 + "…"


def test_an_exception_is_described_by_its_type_and_message(settings: Any) -> None:
    settings.OPENAI_CAPI_API_KEY = "sk-SECRET"
    assert (
        describe_exception(ValueError("key sk-SECRET refused"))
        == f"ValueError: key {REDACTED} refused"
    )
    assert describe_exception(KeyError()) == "KeyError"


class Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception raises")


def test_an_exception_whose_message_cannot_be_read_is_still_described() -> None:
    # A hook's exception is described inside the handler that records the failure:
    # raising there would break the very save the handler protects.
    assert describe_exception(Unreadable()) == (
        "Unreadable: <its message could not be read: str() raised RuntimeError>"
    )


def test_lone_surrogates_are_escaped_like_nul() -> None:
    assert redact("a\ud800b\x00c") == "a\\ud800b\\x00c"
