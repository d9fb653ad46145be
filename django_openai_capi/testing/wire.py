"""What the fake hands its transports (HTTP, ``responses``), and what they ask of it.

The transports depend on this, not on the fake: the fake starts them, so an import of
the fake from a transport would make the two one import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

PATH: Final = "/v1/events"


@dataclass(frozen=True, slots=True)
class FakeResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    #: Seconds the transport waits before answering (a "delay" fault).
    delay: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body)


class Reset(NamedTuple):
    """A ``reset`` fault: reset the connection (TCP RST) instead of answering."""


class Serves(Protocol):
    """What a transport hands each request to (:meth:`FakeConversionsAPI.serve`)."""

    def serve(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse | Reset | None:
        """The answer, a reset, or ``None`` to close the connection unanswered."""
