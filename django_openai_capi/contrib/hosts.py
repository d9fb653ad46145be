"""What the contrib apps check alike: their host package's version, and the setting
that names the conversion they register.

``contrib.oscar`` (``OPENAI_CAPI_OSCAR_CONVERSION``) and ``contrib.auth`` /
``contrib.allauth`` (``OPENAI_CAPI_USER_CONVERSION``) each register one class, which a
project may replace by a subclass of its own. The text of each problem is what both the
app's check and its start-up log line say, so that they never disagree.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

from django.utils.module_loading import import_string

from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion


def version_problem(distribution: str, minimum: tuple[int, ...]) -> str | None:
    """Why the installed *distribution* is not usable (missing, or older than
    *minimum*); None when it is."""
    needed = ".".join(map(str, minimum))
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution} is not installed ({needed} or later is needed)"
    parts = re.match(r"\d+(?:\.\d+)*", version)
    if parts is None:
        return f"{distribution}'s version {version!r} cannot be read ({needed} or later is needed)"
    if tuple(int(part) for part in parts.group().split(".")) < minimum:
        return f"{distribution} {version} is installed; {needed} or later is needed"
    return None


def conversion_class(
    setting: str, value: object, default: str
) -> type[ModelConversion[Any]]:
    """The ``ModelConversion`` subclass *setting* names (*default* when it is None).

    Raises :class:`CapiConfigurationError` naming the setting and its value otherwise.
    """
    path = default if value is None else value
    if not isinstance(path, str):
        raise CapiConfigurationError(
            f"{setting} = {path!r} is not a dotted path (a string)."
        )
    try:
        found = import_string(path)
    except Exception as exc:
        # Not only ImportError: a project's module may raise anything at import (a
        # typo's NameError, a setting read too early), and ready() must not fail
        # before manage.py check can name the setting.
        raise CapiConfigurationError(
            f"{setting} = {path!r} cannot be imported: {describe_exception(exc)}."
        ) from exc
    if not (isinstance(found, type) and issubclass(found, ModelConversion)):
        raise CapiConfigurationError(
            f"{setting} = {path!r} is not a ModelConversion subclass."
        )
    return found
