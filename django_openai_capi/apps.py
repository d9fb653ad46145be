from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_save
from django.utils.translation import gettext_lazy as _

from django_openai_capi.checks import check_settings


class DjangoOpenAICapiConfig(AppConfig):
    name = "django_openai_capi"
    verbose_name = _("OpenAI Conversions API")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_openai_capi.tracking.recording import on_post_save
        from django_openai_capi.tracking.registry import autodiscover

        # Registered here rather than by a decorator at import time, so that importing
        # checks.py (in tests, say) has no side effect.
        checks.register(check_settings)
        # One receiver for every model, not one per registered model: saves through a
        # proxy arrive with the proxy as sender, and the registry resolves them.
        post_save.connect(on_post_save, dispatch_uid="django_openai_capi.post_save")
        autodiscover()
