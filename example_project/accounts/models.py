"""Sign-ups of the demo site.

Kept apart from ``django.contrib.auth``'s users on purpose: the demo's admin user is a
user too, and creating staff accounts is not a conversion.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Registration(models.Model):
    """A completed sign-up: who registered, and when."""

    email = models.EmailField()
    username = models.CharField(max_length=150, unique=True)
    # The id sent (hashed) as external_id: random and stable, so it says nothing about
    # the person, unlike the username, and never changes, unlike the email.
    external_id = models.UUIDField(
        "external ID", default=uuid.uuid4, unique=True, editable=False
    )
    # Not editable: it is the event's timestamp (see RegistrationConversion).
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.username
