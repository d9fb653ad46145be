"""Consent callables the tests name in OPENAI_CAPI_CONSENT, as a host's settings would."""

from __future__ import annotations

from django.http import HttpRequest

from django_openai_capi import ConsentEvent

#: Every call, as (request, event), for the tests to look at.
CALLS: list[tuple[HttpRequest | None, ConsentEvent | None]] = []

#: Not callable: OPENAI_CAPI_CONSENT must name a function.
NOT_CALLABLE = 42


def granted(request: HttpRequest | None, event: ConsentEvent | None) -> bool:
    CALLS.append((request, event))
    return True


def refused(request: HttpRequest | None, event: ConsentEvent | None) -> bool:
    CALLS.append((request, event))
    return False


def by_cookie(request: HttpRequest | None, event: ConsentEvent | None) -> bool:
    """What a site with a consent banner does: the banner's cookie decides."""
    CALLS.append((request, event))
    return request is not None and request.COOKIES.get("consent") == "marketing"


def broken(request: HttpRequest | None, event: ConsentEvent | None) -> bool:
    CALLS.append((request, event))
    raise RuntimeError("the consent service is down")


def vague(request: HttpRequest | None, event: ConsentEvent | None) -> object:
    """A truthy answer that is not True: refused, not guessed at."""
    CALLS.append((request, event))
    return "yes"
