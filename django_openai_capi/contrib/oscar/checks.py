"""What ``contrib.oscar`` needs: django-oscar 4.2+, its order app, a usable conversion.

``order_model`` and ``conversion_class`` are what ``ready()`` registers with; each
raises :class:`CapiConfigurationError` with the text the matching check reports, so
that the log at start-up and ``manage.py check`` say the same thing.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error
from django.db import models
from django.utils.module_loading import import_string

from django_openai_capi.conf import conf
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion

APP = "django_openai_capi.contrib.oscar"
#: The oldest django-oscar whose checkout this app is tested against.
MINIMUM_VERSION = (4, 2)
SETTING = "OPENAI_CAPI_OSCAR_CONVERSION"


def check_oscar(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    version_problem = _version_problem()
    if version_problem is not None:
        messages.append(
            Error(
                f"{APP} is installed but {version_problem}.",
                hint="pip install 'django-openai-capi[oscar]' (django-oscar 4.2), or remove "
                + f"{APP!r} from INSTALLED_APPS.",
                id="django_openai_capi.oscar.E001",
            )
        )
    else:
        try:
            order_model()
        except CapiConfigurationError as exc:
            messages.append(
                Error(
                    str(exc),
                    hint="Add Oscar's apps as its documentation lists them "
                    + "('oscar.apps.order.apps.OrderConfig', or your fork of it).",
                    id="django_openai_capi.oscar.E002",
                )
            )
    try:
        conversion_class()
    except CapiConfigurationError as exc:
        messages.append(
            Error(
                str(exc),
                hint=f"Set {SETTING} to the dotted path of a ModelConversion "
                + "subclass, such as a subclass of "
                + "django_openai_capi.contrib.oscar.conversions.OrderConversion, "
                + "or remove the setting for that class itself.",
                id="django_openai_capi.oscar.E003",
            )
        )
    return messages


def _version_problem() -> str | None:
    try:
        version = importlib.metadata.version("django-oscar")
    except importlib.metadata.PackageNotFoundError:
        return "django-oscar is not"
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return f"django-oscar's version {version!r} cannot be read (4.2 or later is needed)"
    if (int(match[1]), int(match[2])) < MINIMUM_VERSION:
        return f"django-oscar {version} is older than 4.2"
    return None


def order_model() -> type[models.Model]:
    """Oscar's Order model: the project's fork of it when the order app is forked."""
    try:
        from oscar.core.loading import get_model
    except ImportError as exc:
        raise CapiConfigurationError(
            f"django-oscar cannot be imported ({describe_exception(exc)})."
        ) from exc
    try:
        model: type[models.Model] = get_model("order", "Order")
    except LookupError as exc:
        raise CapiConfigurationError(
            "Oscar's order app (label 'order') is not in INSTALLED_APPS, so there "
            + "is no Order model to track."
        ) from exc
    return model


def conversion_class() -> type[ModelConversion[Any]]:
    """The class ``OPENAI_CAPI_OSCAR_CONVERSION`` names, once it is known to be one."""
    path: object = conf.OPENAI_CAPI_OSCAR_CONVERSION
    if not isinstance(path, str):
        raise CapiConfigurationError(
            f"{SETTING} must be a dotted path (a string), got {type(path).__name__}."
        )
    try:
        value = import_string(path)
    except Exception as exc:
        # Not only ImportError: a project's module may raise anything at import (a
        # typo's NameError, a setting read too early), and ready() must not fail
        # before manage.py check can name the setting.
        raise CapiConfigurationError(
            f"{SETTING} = {path!r} cannot be imported: {describe_exception(exc)}"
        ) from exc
    if not (isinstance(value, type) and issubclass(value, ModelConversion)):
        raise CapiConfigurationError(
            f"{SETTING} = {path!r} is not a subclass of ModelConversion."
        )
    return value
