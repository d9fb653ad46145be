"""Running a management command as a test would from a shell, output captured."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import models

from django_openai_capi.tracking.conversion import ModelConversion
from django_openai_capi.tracking.registry import registry


@dataclass
class Output:
    stdout: str
    stderr: str
    #: The message of the CommandError that ended the run.
    error: str = ""
    #: The exit status it gives (``health.ExitCode``); 0 for a run that succeeded.
    returncode: int = 0


Run = Callable[..., Output]
Swap = Callable[[type[models.Model], type[ModelConversion[Any]]], None]


def _run(name: str, *args: str, fails: bool, **options: Any) -> Output:
    stdout, stderr = StringIO(), StringIO()
    if not fails:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
        return Output(stdout.getvalue(), stderr.getvalue())
    with pytest.raises(CommandError) as raised:
        call_command(name, *args, stdout=stdout, stderr=stderr, **options)
    return Output(
        stdout.getvalue(),
        stderr.getvalue(),
        str(raised.value),
        raised.value.returncode,
    )


@pytest.fixture
def run() -> Run:
    """``run("openai_capi_cleanup", "--days=3")``: a run that succeeds, its output."""
    return lambda name, *args, **options: _run(name, *args, fails=False, **options)


@pytest.fixture
def run_failing() -> Run:
    """A run that ends in a CommandError: its output, and the error's message."""
    return lambda name, *args, **options: _run(name, *args, fails=True, **options)


@pytest.fixture
def record_failures(settings: Any) -> None:
    """Production behaviour: a broken conversion is recorded as failed, not raised."""
    settings.OPENAI_CAPI_RAISE_ERRORS = False


@pytest.fixture
def swap() -> Iterator[Swap]:
    """Give a model another conversion for one test; the registry is restored after."""
    with ExitStack() as stack:

        def swap(model: type[models.Model], cls: type[ModelConversion[Any]]) -> None:
            stack.enter_context(registry.override(model, cls))

        yield swap
