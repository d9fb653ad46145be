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
