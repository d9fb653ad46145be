"""What a request knows about the conversion's visitor: click ids, IP, agent, page.

Read from an explicit ``request`` by :func:`~django_openai_capi.track`, or, during a
request that passed through :class:`~django_openai_capi.middleware.OpenAICapiMiddleware`,
from the request the middleware exposes: that is how an order saved by a view, which
passes no request to anything, still carries the visitor's ``oppref``. A value the API
would refuse (an address that is not an IP, a blank cookie) is left out rather than
sent: it comes from the visitor's browser, and one odd cookie must not cost the event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest

from django_openai_capi.api.canonical import dumps
from django_openai_capi.api.values import is_text
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.client_ip import client_ip

logger = logging.getLogger("django_openai_capi.tracking")

#: The landing-page query parameter OpenAI's ads add.
OPPREF_PARAM = "oppref"
#: First-party cookies the Measurement Pixel keeps the click and browser ids in.
OPPREF_COOKIE = "__oppref"
OBREF_COOKIE = "__obref"

#: The context's fields that go into the event's ``user`` object, by key.
USER_FIELDS = ("ip_address", "user_agent", "obref")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The visitor's click id, browser id, IP, user agent and page URL, where known."""

    oppref: str | None = None
    obref: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    #: The page's URL without its query string (a query can carry personal data).
    source_url: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> RequestContext:
        return cls(
            # The landing URL's value is the freshest; the cookie keeps it for later pages.
            oppref=_text(request.GET.get(OPPREF_PARAM))
            or _text(request.COOKIES.get(OPPREF_COOKIE)),
            obref=_text(request.COOKIES.get(OBREF_COOKIE)),
            ip_address=client_ip(request),
            user_agent=_text(request.META.get("HTTP_USER_AGENT")),
            source_url=_page_url(request),
        )

    def __bool__(self) -> bool:
        return any(getattr(self, field.name) is not None for field in fields(self))

    def without(self, names: set[str]) -> RequestContext:
        """This context with the fields *names* left out."""
        return replace(self, **dict.fromkeys(names))

    def to_json(self) -> str | None:
        """Canonical JSON of the known fields, as stored on the outbox row; ``None`` if none."""
        # By name, not dataclasses.asdict: that deep-copies every value, on every save.
        known = {name: value for name in _FIELD_NAMES if (value := getattr(self, name))}
        return dumps(known) if known else None

    @classmethod
    def from_json(cls, text: str | None) -> RequestContext:
        """The context stored by :meth:`to_json`; what cannot be read is left out."""
        try:
            stored = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(stored, dict):
            return cls()
        return cls(**{f.name: _text(stored.get(f.name)) for f in fields(cls)})


_FIELD_NAMES = tuple(field.name for field in fields(RequestContext))


def _text(value: object) -> str | None:
    return value if is_text(value) else None


def _page_url(request: HttpRequest) -> str | None:
    # Scheme, host and path only: a query string can carry personal data (an email in
    # a sign-up link), and the click id it may carry is sent as oppref already.
    try:
        return _text(request.build_absolute_uri(request.path))
    except DisallowedHost:
        return None


# The request being served, for code that is not handed it (a post_save receiver).


class _Visit:
    """The current request, and its context read once, on first use."""

    __slots__ = ("_context", "request")

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self._context: RequestContext | None = None

    @property
    def context(self) -> RequestContext:
        if self._context is None:
            try:
                self._context = RequestContext.from_request(self.request)
            except Exception as exc:
                # A request Django itself cannot parse (too many query fields, say):
                # the conversion is recorded without the visitor's context.
                logger.warning(
                    "The request's context could not be read: %s",
                    describe_exception(exc),
                )
                self._context = RequestContext()
        return self._context


# A ContextVar, not a thread-local: each asyncio task and each thread sees its own, and
# asgiref copies it into the thread that runs a sync view under ASGI.
_visit: ContextVar[_Visit | None] = ContextVar("django_openai_capi_visit", default=None)


@contextmanager
def serving(request: HttpRequest) -> Iterator[None]:
    """Expose *request* to :func:`current_request` and :func:`current_context`."""
    token = _visit.set(_Visit(request))
    try:
        yield
    finally:
        _visit.reset(token)


def current_request() -> HttpRequest | None:
    """The request being served, where the middleware is installed; else ``None``."""
    visit = _visit.get()
    return None if visit is None else visit.request


def current_context() -> RequestContext | None:
    """The context of the request being served, or ``None`` outside one."""
    visit = _visit.get()
    return None if visit is None else visit.context
