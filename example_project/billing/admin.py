"""Subscriptions are started in the admin; each new one records a conversion event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from example_project.billing.models import Subscription

# Generic only to the type checker (django-stubs); not subscriptable at run time.
if TYPE_CHECKING:
    _SubscriptionAdmin = admin.ModelAdmin[Subscription]
else:
    _SubscriptionAdmin = admin.ModelAdmin


@admin.register(Subscription)
class SubscriptionAdmin(_SubscriptionAdmin):
    list_display = ["plan_id", "email", "price", "currency", "created_at"]
    list_filter = ["plan_id", "currency"]
    search_fields = ["email", "plan_id"]
    readonly_fields = ["created_at"]
