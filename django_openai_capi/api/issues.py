"""Collecting every problem of an event before raising one error."""

from __future__ import annotations

from django_openai_capi.exceptions import EventValidationError, ValidationIssue


class IssueCollector:
    def __init__(self) -> None:
        self.issues: list[ValidationIssue] = []

    def add(self, path: str, code: str, message: str) -> None:
        self.issues.append(ValidationIssue(path, code, message))

    def raise_if_any(self) -> None:
        if self.issues:
            raise EventValidationError(self.issues)
