"""The exceptions of django-openai-capi.

Everything the app raises at run time derives from :class:`CapiError`, so a caller can
catch one class. A misconfiguration is the exception to that rule: it derives from
Django's ``ImproperlyConfigured`` instead, so that a broad ``except CapiError`` in a
delivery loop never swallows a setting that has to be fixed by a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured


class CapiError(Exception):
    """Base class of every run-time error of django-openai-capi."""


class CapiConfigurationError(ImproperlyConfigured):
    """An ``OPENAI_CAPI_*`` setting is missing or cannot work."""


class UnusableApiKeyError(CapiConfigurationError):
    """The API key configured for a pixel cannot be sent (whitespace, quotes ...).

    ``setting`` names where it came from (``OPENAI_CAPI_API_KEY`` or
    ``OPENAI_CAPI_PIXEL_API_KEYS['<pixel>']``); nothing here holds the key.
    """

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem with an event: where it is, which rule it breaks, and what was given.

    ``path`` uses the API's own notation (``events[0].data.contents[2].quantity``), so it
    can be compared with the ``param`` of an API error. ``message`` never carries the raw
    value of a personal identifier.
    """

    path: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [{self.code}]"


class EventValidationError(CapiError, ValueError):
    """An event, or a batch of events, does not fit the Conversions API.

    Carries every problem found, not only the first, in ``issues``.
    """

    issues: tuple[ValidationIssue, ...]

    def __init__(self, issues: Iterable[ValidationIssue]) -> None:
        self.issues = tuple(issues)
        if not self.issues:
            raise ValueError("EventValidationError needs at least one issue")
        super().__init__(self._describe())

    @property
    def path(self) -> str:
        """The field path of the first problem."""
        return self.issues[0].path

    @property
    def paths(self) -> list[str]:
        return [issue.path for issue in self.issues]

    @property
    def codes(self) -> list[str]:
        return [issue.code for issue in self.issues]

    def _describe(self) -> str:
        if len(self.issues) == 1:
            return str(self.issues[0])
        lines = "".join(f"\n  - {issue}" for issue in self.issues)
        return f"{len(self.issues)} problems:{lines}"


class ConversionError(CapiError):
    """A registered conversion, or a ``track()`` call, could not produce its event.

    Raised only where the project asks for errors (``OPENAI_CAPI_RAISE_ERRORS = True``,
    for test settings); otherwise the event is recorded as failed with the same
    message, and logged. The original exception is the ``__cause__``.
    """

    def __init__(self, message: str, *, source_label: str = "") -> None:
        super().__init__(message)
        self.source_label = source_label


class TransportError(CapiError):
    """No HTTP response came back: a timeout, a refused or dropped connection, TLS.

    The request may or may not have reached the API; resending it is safe because the
    API keeps the first event it receives for a (pixel, type, id).
    """

    def __init__(self, message: str, *, duration_ms: int) -> None:
        super().__init__(message)
        self.duration_ms = duration_ms
