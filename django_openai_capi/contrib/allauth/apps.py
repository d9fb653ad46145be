from __future__ import annotations

from django.apps import AppConfig, apps
from django.core import checks

#: The class registered unless OPENAI_CAPI_USER_CONVERSION names another.
DEFAULT_CONVERSION = (
    "django_openai_capi.contrib.allauth.conversions.AllauthUserConversion"
)


class AllauthConfig(AppConfig):
    """Records ``registration_completed`` for each sign-up through django-allauth."""

    name = "django_openai_capi.contrib.allauth"
    # Not "allauth": that is django-allauth's own label.
    label = "openai_capi_allauth"
    verbose_name = "OpenAI Conversions API: sign-ups (django-allauth)"

    def ready(self) -> None:
        from django_openai_capi.contrib.allauth.checks import (
            AUTH_APP,
            check_allauth,
            host_problems,
        )
        from django_openai_capi.contrib.auth.setting import register_user_conversion

        checks.register(check_allauth)
        # Without a usable allauth the conversion cannot even be imported; with the
        # auth app too the user model would be registered twice. Either way nothing is
        # registered, so that start-up reaches the checks that say what to fix.
        if host_problems() or apps.is_installed(AUTH_APP):
            return
        register_user_conversion(DEFAULT_CONVERSION)
