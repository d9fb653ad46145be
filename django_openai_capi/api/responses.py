"""Reading the API's answers: the error envelope, and which events it blames.

The API documents no response bodies. What has been observed (reference §15) is an
OpenAI-style envelope, ``{"error": {"message", "type", "param", "code", "errors"}}``,
where ``param`` names the offending event as ``events[3]`` or a field inside it. Every
reader here accepts anything, because a proxy or an outage can answer with HTML.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_EVENT_PARAM = re.compile(r"^events\[(\d+)\]")
#: A validation error's ``loc`` inside its message, as the API's framework words it:
#: ``'loc': ('query', 'pid')`` (observed), or JSON's ``"loc": ["query", "pid"]``.
_LOC = re.compile(r"""['"]loc['"]\s*:\s*[(\[]([^)\]]*)[)\]]""")
_LOC_PART = re.compile(r"""['"]([^'"]*)['"]|(\d+)""")
#: Where a ``loc`` can start outside the request's body: no event lives there.
_OUTSIDE_BODY = frozenset({"query", "header", "path", "cookie"})
#: The request's own fields, beside its events: ``pid`` in the query string, the rest
#: in the body (``api.events.encode_request``).
_REQUEST_PARAMS = frozenset({"pid", "integration_source", "validate_only"})

#: The one error code known to mean "too old", which makes an event expired, not failed.
TIMESTAMP_TOO_OLD = "event_timestamp_too_old"


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    message: str
    param: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class ApiErrorBody:
    """The parts of an error envelope the app acts on."""

    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None
    details: tuple[ErrorDetail, ...] = field(default=())

    def event_indexes(self) -> dict[int, list[ErrorDetail]]:
        """The events the error blames, by index in the request, with their details.

        ``param`` of the error and of each nested error count; an index named only by
        the top-level ``param`` gets a detail made from the top-level message.
        """
        blamed: dict[int, list[ErrorDetail]] = {}
        for detail in self.details:
            index = event_index(detail.param)
            if index is not None:
                blamed.setdefault(index, []).append(detail)
        top = event_index(self.param)
        if top is not None and top not in blamed:
            blamed[top] = [ErrorDetail(self.message, self.param, self.code)]
        return blamed

    def names_the_request(self) -> bool:
        """Whether the error points at the request itself, and at no event.

        The missing-pid body's ``('query', 'pid')`` does: such a refusal repeats
        whatever events the request carries, so no lone event needs to show it. Every
        ``loc`` in a message and every ``param`` must point outside the events.
        """
        outside = [*_locs_outside_events(self.message), *_param_outside(self.param)]
        for detail in self.details:
            outside += _locs_outside_events(detail.message)
            outside += _param_outside(detail.param)
        return bool(outside) and all(outside)

    def describe(self, index: int | None = None) -> str:
        """The message to store, for the whole error or for the event at *index*."""
        if index is not None:
            details = self.event_indexes().get(index, [])
            if details:
                return "; ".join(_detail_text(detail) for detail in details)
        text = self.message
        if self.code:
            text += f" [{self.code}]"
        return text


def _detail_text(detail: ErrorDetail) -> str:
    text = f"{detail.param}: {detail.message}" if detail.param else detail.message
    return f"{text} [{detail.code}]" if detail.code else text


def _locs_outside_events(message: str) -> list[bool]:
    """For each ``loc`` in *message*, whether it points outside the events.

    A query parameter, a header, or a field of the body beside ``events`` does; a bare
    ``('body',)`` (a body that did not parse) says nothing either way.
    """
    outside = []
    for loc in _LOC.finditer(message):
        parts = [text or number for text, number in _LOC_PART.findall(loc.group(1))]
        where, name = (*parts, "", "")[:2]
        outside.append(
            where in _OUTSIDE_BODY or (where == "body" and name not in ("", "events"))
        )
    return outside


def _param_outside(param: str | None) -> list[bool]:
    # Only the request's own fields: another name ("data.type") may be a field of an
    # event the API did not number.
    return [] if param is None else [param in _REQUEST_PARAMS]


def event_index(param: object) -> int | None:
    """``3`` for ``"events[3]"`` or ``"events[3].data.type"``; ``None`` otherwise."""
    if not isinstance(param, str):
        return None
    match = _EVENT_PARAM.match(param)
    return int(match.group(1)) if match else None


def parse_error(body: bytes) -> ApiErrorBody | None:
    """The error envelope in *body*, or ``None`` when *body* is not one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    errors = error.get("errors")
    details = tuple(
        ErrorDetail(
            message=str(item.get("message", "")),
            param=_text(item.get("param")),
            code=_text(item.get("code")),
        )
        for item in (errors if isinstance(errors, list) else ())
        if isinstance(item, dict)
    )
    return ApiErrorBody(
        message=error["message"],
        type=_text(error.get("type")),
        param=_text(error.get("param")),
        code=_text(error.get("code")),
        details=details,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
