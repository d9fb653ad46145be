"""Reliable server-side conversion events for the OpenAI Ads Conversions API.

The public names are loaded on first use: this package is imported while Django is
still loading apps, before its models may be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_openai_capi.api.spec import EventType
    from django_openai_capi.tracking.building import build_pending
    from django_openai_capi.tracking.consent import ConsentEvent
    from django_openai_capi.tracking.context import RequestContext
    from django_openai_capi.tracking.conversion import ModelConversion
    from django_openai_capi.tracking.registry import register
    from django_openai_capi.tracking.track import track

__all__ = [
    "ConsentEvent",
    "EventType",
    "ModelConversion",
    "RequestContext",
    "build_pending",
    "register",
    "track",
]


def __getattr__(name: str) -> Any:
    if name == "EventType":
        from django_openai_capi.api.spec import EventType

        return EventType
    if name in __all__:
        from django_openai_capi import tracking

        return getattr(tracking, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
