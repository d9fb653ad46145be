"""How events are born: registered model conversions, their signals, and ``track()``."""

from __future__ import annotations

from django_openai_capi.tracking.building import BuildReport, build_pending
from django_openai_capi.tracking.consent import ConsentEvent
from django_openai_capi.tracking.context import RequestContext
from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import register, registry
from django_openai_capi.tracking.track import track

__all__ = [
    "BuildReport",
    "ConsentEvent",
    "ModelConversion",
    "RequestContext",
    "build_pending",
    "register",
    "registry",
    "track",
]
