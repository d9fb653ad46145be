from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_openai_capi.exceptions import (
    CapiConfigurationError,
    CapiError,
    EventValidationError,
    ValidationIssue,
)


def test_validation_errors_are_capi_errors_and_value_errors():
    error = EventValidationError(
        [ValidationIssue("events[0].id", "missing_id", "is required")]
    )
    assert isinstance(error, CapiError)
    assert isinstance(error, ValueError)
    assert str(error) == "events[0].id: is required [missing_id]"
    assert error.path == "events[0].id"


def test_several_issues_are_listed_one_per_line():
    error = EventValidationError(
        [ValidationIssue("a", "x", "bad"), ValidationIssue("b", "y", "worse")]
    )
    assert str(error) == "2 problems:\n  - a: bad [x]\n  - b: worse [y]"
    assert error.paths == ["a", "b"]
    assert error.codes == ["x", "y"]


def test_a_validation_error_without_issues_is_a_bug():
    with pytest.raises(ValueError):
        EventValidationError([])


def test_configuration_errors_stay_outside_capi_error():
    # so that `except CapiError` in a delivery loop never hides a setting to fix
    assert issubclass(CapiConfigurationError, ImproperlyConfigured)
    assert not issubclass(CapiConfigurationError, CapiError)
