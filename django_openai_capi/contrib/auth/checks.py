"""System checks of ``django_openai_capi.contrib.auth``, registered in ``ready()``.

* ``django_openai_capi.auth.E001`` an app it needs is not in INSTALLED_APPS
* ``django_openai_capi.auth.E002`` OPENAI_CAPI_USER_CONVERSION is not the dotted path of a ModelConversion subclass
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from django.apps import apps
from django.core import checks

from django_openai_capi.checks import CheckId
from django_openai_capi.contrib.auth.setting import SETTING, setting_problem

#: What every sign-up app needs: the users, and the app that records their saves.
REQUIRED_APPS = ("django.contrib.auth", "django_openai_capi")

#: This app's check ids, for the checks reference (a test keeps it and the ids used
#: here the same). Markdown.
CHECK_IDS: Mapping[str, CheckId] = MappingProxyType(
    {
        "django_openai_capi.auth.E001": CheckId(
            "`django.contrib.auth` or `django_openai_capi` is not in `INSTALLED_APPS`.",
            "Add it: no sign-up is recorded without it.",
        ),
        "django_openai_capi.auth.E002": CheckId(
            "`OPENAI_CAPI_USER_CONVERSION` cannot be imported, or is not a "
            "`ModelConversion` subclass (the message quotes it).",
            "Correct the dotted path, or remove the setting to use the app's own class.",
        ),
    }
)


def missing_apps(required: Sequence[str]) -> list[str]:
    return [name for name in required if not apps.is_installed(name)]


def missing_apps_error(
    app: str, required: Sequence[str], *, hint: str, id: str
) -> list[checks.CheckMessage]:
    """The Error naming the *required* apps *app* lacks; *hint* may say ``{missing}``."""
    missing = ", ".join(repr(name) for name in missing_apps(required))
    if not missing:
        return []
    return [
        checks.Error(
            f"{app} needs {missing} in INSTALLED_APPS.",
            hint=hint.format(missing=missing),
            id=id,
        )
    ]


def setting_error(default: str, id: str) -> list[checks.CheckMessage]:
    """The Error for a bad ``OPENAI_CAPI_USER_CONVERSION``, with check *id*.

    *default* is the dotted path of the app's own class, which the hint suggests.
    """
    problem = setting_problem(default)
    if problem is None:
        return []
    return [
        checks.Error(
            problem,
            hint=f"Set {SETTING} to the dotted path of a subclass of {default} "
            + "(e.g. 'myproject.conversions.SignUpConversion'), or remove it to use "
            + "that class as it ships.",
            id=id,
        )
    ]


def check_auth(**kwargs: Any) -> list[checks.CheckMessage]:
    errors = missing_apps_error(
        "django_openai_capi.contrib.auth",
        REQUIRED_APPS,
        hint="Add {missing} to INSTALLED_APPS: no sign-up is recorded without it.",
        id="django_openai_capi.auth.E001",
    )
    errors += setting_error(
        "django_openai_capi.contrib.auth.conversions.UserConversion",
        "django_openai_capi.auth.E002",
    )
    return errors
