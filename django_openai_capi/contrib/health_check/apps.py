from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from django.apps import AppConfig, apps
from django.core import checks

from django_openai_capi.checks import CheckId

# The host package itself: right however this app was installed (a checkout, a wheel).
INSTALL = "pip install 'django-health-check>=4.8'"

#: This app's check ids, for the checks reference (a test keeps it and the ids used
#: here the same). Markdown.
CHECK_IDS: Mapping[str, CheckId] = MappingProxyType(
    {
        "django_openai_capi.health_check.E001": CheckId(
            "`django_openai_capi.contrib.health_check` is installed but "
            "django-health-check (version 4 or later) is not.",
            f"`{INSTALL}` (what the `[health]` extra installs), or remove the app "
            "from `INSTALLED_APPS`.",
        ),
        "django_openai_capi.health_check.W001": CheckId(
            "`health_check` (django-health-check) is not in `INSTALLED_APPS`.",
            "Add it: its status page's template and its `health_check` command come "
            "from it.",
        ),
    }
)


class HealthCheckConfig(AppConfig):
    name = "django_openai_capi.contrib.health_check"
    # Not "health_check": that is django-health-check's own label.
    label = "openai_capi_health_check"
    verbose_name = "OpenAI Conversions API: health check"

    def ready(self) -> None:
        checks.register(check_health_check)


def check_health_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """django-health-check 4 is installed, and its app is too (for its page)."""
    try:
        # 4.x: checks subclass health_check.base.HealthCheck; 3.x has no such module.
        importlib.import_module("health_check.base")
    except ImportError:
        return [
            checks.Error(
                "django_openai_capi.contrib.health_check is installed but "
                + "django-health-check (version 4 or later) is not.",
                hint=f"{INSTALL} (what the [health] extra installs), or remove "
                + "'django_openai_capi.contrib.health_check' from INSTALLED_APPS.",
                id="django_openai_capi.health_check.E001",
            )
        ]
    if not apps.is_installed("health_check"):
        return [
            checks.Warning(
                "'health_check' (django-health-check) is not in INSTALLED_APPS.",
                hint="Add it: its status page's template and its health_check "
                + "command come from it.",
                id="django_openai_capi.health_check.W001",
            )
        ]
    return []
