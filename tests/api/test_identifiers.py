"""The rules for the text an event is stored and sent under."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from django_openai_capi.api.identifiers import (
    escape_unstorable,
    pixel_id_problem,
    storable,
    text_problem,
)


def unchanged(text: str) -> str:
    return text


def test_nul_and_lone_surrogates_are_escaped_and_everything_else_kept() -> None:
    assert escape_unstorable("ord\x00er") == "ord\\x00er"
    assert escape_unstorable("évt\ud800\udfff 💥\n") == "évt\\ud800\\udfff 💥\n"


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_an_escaped_text_can_always_be_encoded_and_holds_no_nul(text: str) -> None:
    escaped = escape_unstorable(text)
    escaped.encode("utf-8")
    assert "\x00" not in escaped


def test_storable_escapes_before_it_cuts() -> None:
    assert storable("a\x00" * 10, 7) == "a\\x00a\\"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("fine", None),
        ("x" * 10, None),
        ("x" * 11, "is 11 characters long, more than the 10 that fit"),
        (
            "ab\x00c",
            'contains a NUL character at position 2 ("ab\\x00c"), which the database '
            + "cannot store",
        ),
        (
            "ab\udc80",
            'contains a lone surrogate at position 2 ("ab\\udc80"), which is not valid '
            + "Unicode text",
        ),
        (b"bytes", "is of type bytes, not a string"),
        (None, "is of type NoneType, not a string"),
    ],
)
def test_text_problem_says_what_keeps_a_value_out_of_the_column(
    value: object, problem: str | None
) -> None:
    assert text_problem(value, 10, redact=unchanged) == problem


def test_a_long_value_is_quoted_shortened_with_its_control_characters_escaped() -> None:
    problem = text_problem("\n" + "x" * 60 + "\x00", 255, redact=unchanged)
    assert problem == (
        'contains a NUL character at position 61 ("\\n'
        + "x" * 39
        + '…"), '
        + "which the database cannot store"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("px-main_2", None),
        ("", "is empty"),
        # The value is quoted, as a pixel id that is not a key may be.
        (" px", 'starts or ends with whitespace (" px")'),
        ("px\n", 'starts or ends with whitespace ("px\\n")'),
        ("px main", 'contains whitespace ("px main")'),
        ("px\u2003main", 'contains whitespace ("px\\u2003main")'),
        ("px\x07main", 'contains a control character ("px\\x07main")'),
        ("p x" * 20, f'contains whitespace ("{("p x" * 20)[:40]}…")'),
        ("sk-proj-abc", "looks like an API key"),
        # A key is never quoted, even when it has something else wrong with it.
        ("sk-proj-\x00abc", "looks like an API key"),
        ("p" * 65, "is 65 characters long, more than the 64 that fit"),
        # A number is shown: it is a Pixel ID written without quotes.
        (42, "is 42, not a string"),
        (4.2, "is 4.2, not a string"),
        (10**30, "is an integer, not a string"),
        (True, "is of type bool, not a string"),
    ],
)
def test_a_pixel_id_is_a_non_empty_string_without_whitespace_or_control_characters(
    value: object, problem: str | None
) -> None:
    assert pixel_id_problem(value, redact=unchanged) == problem


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("sk-SECRET-" + "s" * 40 + "\x00", '"[redacted]\\x00"'),
        (
            "x" * 30 + "sk-SECRET-" + "s" * 40 + "\ud800",
            '"' + "x" * 30 + '[redacted]…"',
        ),
    ],
)
def test_the_quote_is_cut_from_the_redacted_value_so_no_part_of_a_secret_shows(
    value: str, quoted: str
) -> None:
    def redact(text: str) -> str:
        return text.replace("sk-SECRET-" + "s" * 40, "[redacted]")

    problem = text_problem(value, 255, redact=redact)
    assert problem is not None
    assert f"({quoted})" in problem
    assert "sk-SECRET" not in problem
