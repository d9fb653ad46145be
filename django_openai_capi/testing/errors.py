"""The bodies the fake answers with, as the real API words them (reference §15.2).

Messages marked "observed" are quoted from real or peer-recorded responses; the others
are undocumented and made up in the same envelope, so that a client can be tested on
them without the fake pretending to know more than it does.
"""

from __future__ import annotations

from typing import Any, Final, Literal

OPENAI_VERSION: Final = "2020-10-01"

# Observed.
UNAUTHORIZED: Final = "Unauthorized"
MISSING_SCOPE: Final = (
    "You have insufficient permissions for this operation. "
    "Missing scopes: ads.third_party_events.write. "
    "Check that you have the correct role in your organization, and if you're using "
    "a restricted API key, that it has the necessary scopes."
)
UNKNOWN_PID: Final = "403: unknown pid"
MISSING_PID: Final = "[{'type': 'missing', 'loc': ('query', 'pid'), 'msg': 'Field required', 'input': None}]"
AUTH_BACKEND_FAILURE: Final = "503: Authentication backend failure"
MISSING_EVENTS: Final = "Missing required field: events"

FaultKind = Literal[
    "unauthorized",
    "missing_scope",
    "unknown_pid",
    "missing_pid",
    "auth_backend_failure",
    "server_error",
    "bad_gateway",
    "rate_limited",
    "drop",
    "reset",
    "delay",
]

#: The answer of each fault that answers: status, message, ``error.type``.
FAULT_ANSWERS: Final[dict[str, tuple[int, str, str]]] = {
    "unauthorized": (401, UNAUTHORIZED, "invalid_request_error"),
    # The type of the missing-scope error was not published; OpenAI's platform uses this one.
    "missing_scope": (401, MISSING_SCOPE, "invalid_request_error"),
    "unknown_pid": (403, UNKNOWN_PID, "server_error"),
    # What the API answers a request whose ?pid= was lost (a proxy stripping the query
    # string): every request, whatever events it carries, names none of them.
    "missing_pid": (400, MISSING_PID, "invalid_request_error"),
    "auth_backend_failure": (503, AUTH_BACKEND_FAILURE, "server_error"),
    # Not documented: the shape of the 503 above, with another status.
    "server_error": (500, "500: Internal server error", "server_error"),
    "bad_gateway": (502, "502: Bad gateway", "server_error"),
    "rate_limited": (429, "429: Too many requests", "rate_limit_error"),
}
FAULT_KINDS: Final = frozenset(FAULT_ANSWERS) | {"drop", "reset", "delay"}


def envelope(
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": type,
        "param": param,
        "code": code,
    }
    if errors is not None:
        error["errors"] = errors
    return {"error": error}
