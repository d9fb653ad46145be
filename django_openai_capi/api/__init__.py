"""The Conversions API as data: event shapes, identity, money, validation, payloads.

Pure Python: nothing in this package touches the ORM, the network or the file system,
so it can be tested (and reused) without a database.
"""

from __future__ import annotations

from django_openai_capi.api.events import build_event, encode_event, encode_request
from django_openai_capi.api.identity import build_user, hash_identifier, normalize
from django_openai_capi.api.money import to_minor_units
from django_openai_capi.api.spec import EventType
from django_openai_capi.api.validation import validate_event, validate_request

__all__ = [
    "EventType",
    "build_event",
    "build_user",
    "encode_event",
    "encode_request",
    "hash_identifier",
    "normalize",
    "to_minor_units",
    "validate_event",
    "validate_request",
]
