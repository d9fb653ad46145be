"""Staff users with and without the actions' permissions, logged in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from django_openai_capi.models import ConversionEvent

StaffClient = Callable[..., Client]

CHANGELIST = "/admin/django_openai_capi/conversionevent/"
STATUS_PAGE = "/admin/django_openai_capi/deliverystatus/"


@pytest.fixture
def staff_client(db: None) -> StaffClient:
    """A client logged in as a staff user (not a superuser) with *codenames*."""

    def make(*codenames: str, username: str = "staff") -> Client:
        user = User.objects.create_user(username, password="x", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label=ConversionEvent._meta.app_label,
                codename__in=codenames,
            )
        )
        client = Client()
        client.force_login(user)
        return client

    return make


def action(client: Any, name: str, events: list[ConversionEvent], **query: str) -> Any:
    """Run the changelist action *name* on *events*, following the redirect."""
    return client.post(
        CHANGELIST
        + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""),
        {
            "action": name,
            "_selected_action": [str(event.pk) for event in events],
            "index": "0",
        },
        follow=True,
    )
