"""System checks of ``django_openai_capi.contrib.allauth``, registered in ``ready()``.

* ``django_openai_capi.allauth.E001`` django-allauth is not installed, or is older than 65
* ``django_openai_capi.allauth.E002`` an app it needs (allauth.account ...) is not in INSTALLED_APPS
* ``django_openai_capi.allauth.E003`` django_openai_capi.contrib.auth is installed too
* ``django_openai_capi.allauth.E004`` OPENAI_CAPI_USER_CONVERSION is not the dotted path of a ModelConversion subclass
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from django.apps import apps
from django.core import checks

from django_openai_capi.checks import CheckId
from django_openai_capi.contrib import hosts
from django_openai_capi.contrib.auth.checks import (
    REQUIRED_APPS as AUTH_REQUIRED_APPS,
)
from django_openai_capi.contrib.auth.checks import (
    missing_apps,
    missing_apps_error,
    setting_error,
)

#: allauth's first version with ``account/internal/flows`` and ``SIGNUP_FIELDS``.
MIN_VERSION = 65
REQUIRED_APPS = (*AUTH_REQUIRED_APPS, "allauth", "allauth.account")
AUTH_APP = "django_openai_capi.contrib.auth"
INSTALL = f"pip install 'django-allauth>={MIN_VERSION}'"

#: This app's check ids, for the checks reference (a test keeps it and the ids used
#: here the same). Markdown.
CHECK_IDS: Mapping[str, CheckId] = MappingProxyType(
    {
        "django_openai_capi.allauth.E001": CheckId(
            f"django-allauth is not installed, or is older than {MIN_VERSION}.",
            "`pip install 'django-allauth>=65'` (what the `[allauth]` extra installs), or use "
            "`django_openai_capi.contrib.auth` for sign-ups without allauth.",
        ),
        "django_openai_capi.allauth.E002": CheckId(
            "`allauth`, `allauth.account`, `django.contrib.auth` or "
            "`django_openai_capi` is not in `INSTALLED_APPS`.",
            "Add them as allauth's installation guide says.",
        ),
        "django_openai_capi.allauth.E003": CheckId(
            "Both `contrib.auth` and `contrib.allauth` are installed: both would record "
            "sign-ups, so neither does.",
            "Remove `django_openai_capi.contrib.auth`.",
        ),
        "django_openai_capi.allauth.E004": CheckId(
            "`OPENAI_CAPI_USER_CONVERSION` cannot be imported, or is not a "
            "`ModelConversion` subclass (the message quotes it).",
            "Correct the dotted path, or remove the setting to use the app's own class.",
        ),
    }
)


def version_problem() -> str | None:
    """Why the installed django-allauth cannot be used; None when it can."""
    return hosts.version_problem("django-allauth", (MIN_VERSION,))


def host_problems() -> bool:
    """Whether allauth cannot be used as this app needs it (the checks say why)."""
    return version_problem() is not None or bool(missing_apps(REQUIRED_APPS))


def check_allauth(**kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    problem = version_problem()
    if problem is not None:
        errors.append(
            checks.Error(
                f"django_openai_capi.contrib.allauth needs django-allauth: {problem}.",
                hint=f"{INSTALL}, or remove 'django_openai_capi.contrib.allauth' from "
                + "INSTALLED_APPS (use 'django_openai_capi.contrib.auth' for sign-ups "
                + "without allauth).",
                id="django_openai_capi.allauth.E001",
            )
        )
    errors += missing_apps_error(
        "django_openai_capi.contrib.allauth",
        REQUIRED_APPS,
        hint="Add them as allauth's installation guide says: no sign-up is "
        + "recorded without them.",
        id="django_openai_capi.allauth.E002",
    )
    if apps.is_installed(AUTH_APP):
        errors.append(
            checks.Error(
                f"'{AUTH_APP}' and 'django_openai_capi.contrib.allauth' are both in "
                + "INSTALLED_APPS; both record sign-ups of AUTH_USER_MODEL, so "
                + "neither does.",
                hint=f"Remove '{AUTH_APP}': the allauth app records every new user "
                + "the auth app would, with allauth's email addresses, phone and "
                + "social names on top.",
                id="django_openai_capi.allauth.E003",
            )
        )
    errors += setting_error(
        "django_openai_capi.contrib.allauth.conversions.AllauthUserConversion",
        "django_openai_capi.allauth.E004",
    )
    return errors
