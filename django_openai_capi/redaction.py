"""Keeping the API key out of every text the app stores, logs or shows.

Errors come from places the app does not control (a host's hook, ``requests``, an echo
in a response body); any of them could quote the key. Text passes through ``redact``
before it reaches a log line, a database row or an exception.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping

from django_openai_capi.api.identifiers import escape_unstorable
from django_openai_capi.conf import conf

REDACTED = "[redacted]"
#: Stored error texts are cut to this many characters: enough to act on, never a dump.
MAX_ERROR_LENGTH = 2000


def configured_keys() -> list[str]:
    """Every API key in the settings, longest first (so no key hides part of another)."""
    per_pixel = conf.OPENAI_CAPI_PIXEL_API_KEYS
    # A malformed setting (reported by the checks) must not stop redaction of the rest.
    keys = {conf.OPENAI_CAPI_API_KEY}
    if isinstance(per_pixel, Mapping):
        keys.update(per_pixel.values())
    forms: set[str] = set()
    for key in keys:
        if isinstance(key, str) and key.strip():
            # A key read from a file often ends in a newline; error messages quote it
            # as it is, stripped, or as its repr() (requests' InvalidHeader does).
            forms.update({key, key.strip(), repr(key)[1:-1]})
    return sorted(forms, key=len, reverse=True)


def redact(text: str, *, limit: int = MAX_ERROR_LENGTH) -> str:
    """*text* with every configured key replaced, cut to *limit* characters.

    NUL characters and lone surrogates are escaped too: PostgreSQL text cannot hold
    the first, UTF-8 cannot encode the second, and an error message that cannot be
    stored would leave its event unrecorded (and break the write it was part of).
    """
    for key in configured_keys():
        text = text.replace(key, REDACTED)
    text = escape_unstorable(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def describe_exception(exc: BaseException) -> str:
    """``"ValueError: message"``, redacted: how a foreign exception is stored and logged."""
    name = type(exc).__qualname__
    try:
        message = str(exc)
    except Exception as unreadable:
        # Described inside the handlers that record a failure: raising here would
        # break the save they protect.
        message = (
            "<its message could not be read: str() raised "
            + f"{type(unreadable).__qualname__}>"
        )
    return redact(f"{name}: {message}" if message else name)


def format_traceback(exc: BaseException) -> str:
    """The traceback of *exc*, redacted, for a log line.

    Not ``logger.exception``: the logging module would format the raw exception, and
    with it any key its message quotes.
    """
    return redact("".join(traceback.format_exception(exc)), limit=20_000)
