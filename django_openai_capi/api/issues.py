"""Collecting every problem of an event before raising one error, and naming its place."""

from __future__ import annotations

import functools
import re
from typing import Final

from django_openai_capi.exceptions import EventValidationError, ValidationIssue

# Keys of the host's own dicts end up in error paths, and so in logs and the admin: only
# plain names are shown, so that a value mistakenly used as a key (an email address) is not.
_PLAIN_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


class IssueCollector:
    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.issues.append(ValidationIssue(path, code, message))

    def raise_if_any(self) -> None:
        if self.issues:
            raise EventValidationError(self.issues)


def join(path: str, key: object) -> str:
    """``path.key``, with ``<key>`` in place of a key that is not a plain name."""
    # Only short keys go through the cache: a long one cannot be a plain name anyway,
    # and a cache of megabyte keys would hold on to megabytes.
    plain = isinstance(key, str) and len(key) <= 64
    name = _display_name(key) if plain and isinstance(key, str) else "<key>"
    return f"{path}.{name}" if path else name


@functools.lru_cache(maxsize=1024)
def _display_name(key: str) -> str:
    # Paths are built for every field of every event checked, mostly from the same few
    # dozen names; the cache keeps the regex off that path.
    return key if _PLAIN_KEY.fullmatch(key) else "<key>"
