"""What delivery did: one report for a claim, a pass and a whole run, added with ``merge``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django_openai_capi.tracking.building import BuildReport


@dataclass
class DeliveryReport:
    """Counts of what became of events, and the pixels that could not be sent to."""

    #: Events taken back from workers that stopped mid-request.
    reaped: int = 0
    #: What the build step did first: payloads built, and events that could not be.
    build: BuildReport = field(default_factory=BuildReport)
    #: Claims taken, and the events they held.
    batches: int = 0
    claimed: int = 0
    requests: int = 0
    sent: int = 0
    validated: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    #: Set by the claim whose answer paused its pixel: the pass moves on to others.
    halted: bool = False
    #: Pixels held back, and until when.
    paused: dict[str, datetime] = field(default_factory=dict)
    #: Pixels that cannot be sent to (no key), and why.
    skipped: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: OPENAI_CAPI_SEND_ENABLED is False: nothing was done.
    disabled: bool = False

    @property
    def built(self) -> int:
        return self.build.built

    @property
    def not_built(self) -> int:
        """Events whose payload could not be built (failed, cancelled or expired)."""
        return self.build.not_built

    def merge(self, other: DeliveryReport) -> None:
        """Add what *other*, a later report (a claim's, a pass's), found."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.build.merge(other.build)
        self.halted = self.halted or other.halted
        self.paused.update(other.paused)
        self.skipped.update(other.skipped)
        self.problems.extend(other.problems)
        self.disabled = self.disabled or other.disabled

    def summary(self) -> str:
        """One line: what was claimed and what became of it."""
        if self.disabled:
            return (
                "Sending is disabled (OPENAI_CAPI_SEND_ENABLED = False): nothing sent."
            )
        parts = [
            f"claimed {self.claimed}",
            f"sent {self.sent}",
            f"retried {self.retried}",
            f"failed {self.failed}",
            f"expired {self.expired}",
        ]
        if self.validated:
            parts.insert(2, f"validated {self.validated}")
        noun = "request" if self.requests == 1 else "requests"
        line = ", ".join(parts) + f" ({self.requests} {noun}"
        if self.built or self.not_built:
            line += f"; built {self.built}, not built {self.not_built}"
        if self.reaped:
            line += f"; {self.reaped} taken back from stopped workers"
        line += ")"
        if self.paused:
            line += "; paused: " + ", ".join(
                f"{pixel} until {until:%H:%M:%S}"
                for pixel, until in self.paused.items()
            )
        if self.skipped:
            line += "; no key for: " + ", ".join(self.skipped)
        return line


_COUNTS = (
    "reaped",
    "batches",
    "claimed",
    "requests",
    "sent",
    "validated",
    "retried",
    "failed",
    "expired",
)
