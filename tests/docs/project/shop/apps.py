from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The guides' example app, as ``python manage.py startapp shop`` makes it."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"
