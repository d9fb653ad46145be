from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _

from django_openai_capi.checks import check_settings


class DjangoOpenAICapiConfig(AppConfig):
    name = "django_openai_capi"
    verbose_name = _("OpenAI Conversions API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered here rather than by a decorator at import time, so that importing
        # checks.py (in tests, say) has no side effect.
        checks.register(check_settings)
