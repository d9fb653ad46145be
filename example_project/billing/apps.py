from __future__ import annotations

from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Paid plans of the demo site, each new one a ``subscription_created`` conversion."""

    name = "example_project.billing"
    label = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"
