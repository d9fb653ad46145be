"""What ``contrib.oscar`` needs: django-oscar 4.2+, its order app, a usable conversion.

``order_model`` and ``conversion_class`` are what ``ready()`` registers with; each
raises :class:`CapiConfigurationError` with the text the matching check reports, so
that the log at start-up and ``manage.py check`` say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error
from django.db import models

from django_openai_capi.checks import CheckId
from django_openai_capi.conf import conf
from django_openai_capi.contrib import hosts
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.redaction import describe_exception
from django_openai_capi.tracking.conversion import ModelConversion

APP = "django_openai_capi.contrib.oscar"
#: The oldest django-oscar whose checkout this app is tested against.
MINIMUM_VERSION = (4, 2)
SETTING = "OPENAI_CAPI_OSCAR_CONVERSION"
DEFAULT_CONVERSION = "django_openai_capi.contrib.oscar.conversions.OrderConversion"

#: This app's check ids, for the checks reference (a test keeps it and the ids used
#: here the same). Markdown.
CHECK_IDS: Mapping[str, CheckId] = MappingProxyType(
    {
        "django_openai_capi.oscar.E001": CheckId(
            "django-oscar is not installed, is older than 4.2, or its version cannot "
            "be read.",
            "`pip install 'django-oscar>=4.2,<4.3'` (what the `[oscar]` extra installs), or "
            "remove the app.",
        ),
        "django_openai_capi.oscar.E002": CheckId(
            "Oscar's order app (label `order`) is not in `INSTALLED_APPS`, or Oscar "
            "cannot be imported.",
            "Add Oscar's apps as its documentation lists them (or your fork of the "
            "order app).",
        ),
        "django_openai_capi.oscar.E003": CheckId(
            "`OPENAI_CAPI_OSCAR_CONVERSION` is not a string, cannot be imported, or is "
            "not a `ModelConversion` subclass.",
            "Fix the dotted path (a subclass of `OrderConversion`), or remove the "
            "setting.",
        ),
    }
)


def check_oscar(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    version_problem = hosts.version_problem("django-oscar", MINIMUM_VERSION)
    if version_problem is not None:
        messages.append(
            Error(
                f"{APP} needs django-oscar: {version_problem}.",
                hint="pip install 'django-oscar>=4.2,<4.3' (what the [oscar] extra installs), or remove "
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
    return hosts.conversion_class(
        SETTING, conf.OPENAI_CAPI_OSCAR_CONVERSION, DEFAULT_CONVERSION
    )
