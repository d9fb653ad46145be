"""Sign-ups are made in the admin; each new one records a conversion event."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin

from example_project.accounts.models import Registration

# Generic only to the type checker (django-stubs); not subscriptable at run time.
if TYPE_CHECKING:
    _RegistrationAdmin = admin.ModelAdmin[Registration]
else:
    _RegistrationAdmin = admin.ModelAdmin


@admin.register(Registration)
class RegistrationAdmin(_RegistrationAdmin):
    list_display = ["username", "email", "created_at"]
    search_fields = ["username", "email"]
    readonly_fields = ["external_id", "created_at"]
