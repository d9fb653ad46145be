from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """A minimal shop: orders and their lines, each paid order a conversion."""

    name = "example_project.shop"
    label = "shop"
    verbose_name = "Shop"
    default_auto_field = "django.db.models.BigAutoField"
