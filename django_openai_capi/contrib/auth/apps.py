from __future__ import annotations

from django.apps import AppConfig, apps
from django.core import checks

#: The class registered unless OPENAI_CAPI_USER_CONVERSION names another.
DEFAULT_CONVERSION = "django_openai_capi.contrib.auth.conversions.UserConversion"
ALLAUTH_APP = "django_openai_capi.contrib.allauth"


class AuthConfig(AppConfig):
    """Records ``registration_completed`` for each new ``AUTH_USER_MODEL`` user."""

    name = "django_openai_capi.contrib.auth"
    # Not "auth": that is django.contrib.auth's label.
    label = "openai_capi_auth"
    verbose_name = "OpenAI Conversions API: sign-ups (django.contrib.auth)"

    def ready(self) -> None:
        from django_openai_capi.contrib.auth.checks import (
            REQUIRED_APPS,
            check_auth,
            missing_apps,
        )
        from django_openai_capi.contrib.auth.setting import register_user_conversion

        checks.register(check_auth)
        # With the allauth app too, the user model would be registered twice and
        # start-up would fail before the check (allauth.E003) could say which to keep.
        if apps.is_installed(ALLAUTH_APP) or missing_apps(REQUIRED_APPS):
            return
        register_user_conversion(DEFAULT_CONVERSION)
