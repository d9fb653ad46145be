"""What a request knows about the conversion's visitor: click ids, IP, agent, page.

Read from an explicit ``request`` by :func:`~django_openai_capi.track`. A value the API
would refuse (an address that is not an IP, a blank cookie) is left out rather than
sent: it comes from the visitor's browser, and one odd cookie must not cost the event.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest

from django_openai_capi.api.identity import Rejected, normalize_ip_address
from django_openai_capi.api.values import is_text

#: The landing-page query parameter OpenAI's ads add.
OPPREF_PARAM = "oppref"
#: First-party cookies the Measurement Pixel keeps the click and browser ids in.
OPPREF_COOKIE = "__oppref"
OBREF_COOKIE = "__obref"


@dataclass(frozen=True, slots=True)
class RequestContext:
    oppref: str | None = None
    obref: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    source_url: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> RequestContext:
        return cls(
            # The landing URL's value is the freshest; the cookie keeps it for later pages.
            oppref=_text(request.GET.get(OPPREF_PARAM))
            or _text(request.COOKIES.get(OPPREF_COOKIE)),
            obref=_text(request.COOKIES.get(OBREF_COOKIE)),
            ip_address=_ip_address(request.META.get("REMOTE_ADDR")),
            user_agent=_text(request.META.get("HTTP_USER_AGENT")),
            source_url=_page_url(request),
        )


def _text(value: object) -> str | None:
    return value if is_text(value) else None


def _ip_address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        # The API layer's own rule, so that nothing it would refuse gets through
        # (a scoped IPv6 address such as fe80::1%eth0 is valid to Python, not to it).
        return normalize_ip_address(value)
    except Rejected:  # a Unix socket's "" or a test client's placeholder
        return None


def _page_url(request: HttpRequest) -> str | None:
    # Scheme, host and path only: a query string can carry personal data (an email in
    # a sign-up link), and the click id it may carry is sent as oppref already.
    try:
        return request.build_absolute_uri(request.path)
    except DisallowedHost:
        return None
