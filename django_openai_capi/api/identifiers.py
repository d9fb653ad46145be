"""The text an event is stored and sent under: its pixel id, event id and source label.

One set of rules for every way such a value arrives (a setting, a conversion's
attribute or hook, a ``track()`` argument), so that ``manage.py check``, a
registration and a save all refuse the same things. Pure: no settings, no ORM, so the
system checks can use it before the app registry is ready.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Final

from django_openai_capi.api.values import given

# Column sizes. The API documents no limit on an event id; 255 holds every id a host is
# likely to use (UUIDs, "<app_label>.<model>:<pk>" labels) and stays indexable everywhere.
EVENT_ID_MAX_LENGTH: Final = 255
PIXEL_ID_MAX_LENGTH: Final = 64
SOURCE_LABEL_MAX_LENGTH: Final = 255
#: The ``event_type`` column; the longest of the API's names is 22 characters.
EVENT_TYPE_MAX_LENGTH: Final = 32
#: The ``request_id`` columns: the longest ``x-request-id`` the client keeps.
REQUEST_ID_MAX_LENGTH: Final = 128


def escape_unstorable(text: str) -> str:
    """*text* with NUL characters and lone surrogates written as backslash escapes.

    PostgreSQL text cannot hold NUL, and a lone surrogate (which ``json.loads`` and
    ``surrogateescape`` let into a ``str``) is not UTF-8 at all: either one, written
    as it is, raises out of the ``INSERT`` and aborts the transaction it runs in.
    """
    if text.isascii():
        return text.replace("\x00", "\\x00")
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


def storable(text: str, limit: int) -> str:
    """*text* escaped (:func:`escape_unstorable`) and cut to *limit* characters."""
    return escape_unstorable(text)[:limit]


def text_problem(
    value: object, limit: int, *, redact: Callable[[str], str]
) -> str | None:
    """Say what keeps *value* from being stored as text of at most *limit* characters.

    A NUL character or a lone surrogate is pointed at with a quote of the value:
    ``redact(value)`` shortened to 40 characters, unprintable ones escaped. *redact* is
    the caller's (this module reads no settings) and must remove every secret first:
    cut before it, a key is no longer whole for it to find. A value longer than the
    column is not quoted at all.
    """
    if not isinstance(value, str):
        return f"is of type {type(value).__name__}, not a string"
    position = value.find("\x00")
    if position >= 0:
        return (
            f"contains a NUL character at position {position} "
            + f"({_quoted(redact(value))}), which the database cannot store"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return (
                f"contains a lone surrogate at position {exc.start} "
                + f"({_quoted(redact(value))}), which is not valid Unicode text"
            )
    if len(value) > limit:
        return f"is {len(value)} characters long, more than the {limit} that fit"
    return None


def pixel_id_problem(value: object, *, redact: Callable[[str], str]) -> str | None:
    """Say what keeps *value* from being a Pixel ID, or ``None`` if it can be one.

    A Pixel ID is a non-empty string without whitespace or control characters, of at
    most :data:`PIXEL_ID_MAX_LENGTH` characters, that does not look like an API key
    (it travels in the request's URL, and from there into access logs). *redact* is
    :func:`text_problem`'s. The value is quoted as :func:`text_problem` quotes it,
    except when it looks like an API key or is longer than a Pixel ID can be.
    """
    if isinstance(value, str) and starts_like_api_key(value):
        return "looks like an API key"  # and is not quoted, as text_problem would
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A Pixel ID written as a number in settings: its digits say which one.
        return f"is {given(value)}, not a string"
    problem = text_problem(value, limit=PIXEL_ID_MAX_LENGTH, redact=redact)
    if problem is not None or not isinstance(value, str):
        return problem
    if not value:
        return "is empty"
    if value != value.strip():
        problem = "starts or ends with whitespace"
    elif any(char.isspace() for char in value):
        problem = "contains whitespace"
    elif any(unicodedata.category(char) == "Cc" for char in value):
        problem = "contains a control character"
    else:
        return None
    return f"{problem} ({_quoted(redact(value))})"


def looks_like_api_key(value: str) -> bool:
    # OpenAI keys start with "sk-" and are long; a Pixel ID is neither.
    return starts_like_api_key(value) or len(value) > PIXEL_ID_MAX_LENGTH


def starts_like_api_key(value: str) -> bool:
    """Whether *value* starts as OpenAI's keys do: never stored, quoted or logged."""
    return value.strip().startswith("sk-")


def _quoted(value: str) -> str:
    """*value* for an error message: short, and every unprintable character escaped."""
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in value[:40]
    )
    return f'"{shown}…"' if len(value) > 40 else f'"{shown}"'
