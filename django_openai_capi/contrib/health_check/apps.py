from __future__ import annotations

import importlib
from typing import Any

from django.apps import AppConfig, apps
from django.core import checks

INSTALL = "pip install 'django-openai-capi[health]'"


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
                hint=f"Install it with the extra: {INSTALL}. Or remove "
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
