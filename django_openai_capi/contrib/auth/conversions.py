"""``UserConversion``: a new user of ``AUTH_USER_MODEL`` is a ``registration_completed``.

Only defined here; ``apps.py`` registers it (or the class ``OPENAI_CAPI_USER_CONVERSION``
names), so that importing this module to subclass it registers nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist

from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.tracking.context import current_request
from django_openai_capi.tracking.conversion import ModelConversion

if TYPE_CHECKING:
    from django.db.models.query import QuerySet

#: The module of Django's ``createsuperuser`` command.
CREATESUPERUSER = "django.contrib.auth.management.commands.createsuperuser"


class UserConversion(ModelConversion[AbstractBaseUser]):
    """A visitor's new account: ``registration_completed``, once per user.

    Identity: the user's email (the model's ``EMAIL_FIELD``), first and last name
    where the model has them, and the primary key as ``external_id``. The request
    that created the user (IP, user agent, ``oppref``) is kept by the middleware.
    """

    event_type = "registration_completed"
    #: ``AbstractUser``'s; a custom model without it sets its own, or None.
    date_field: ClassVar[str | None] = "date_joined"

    def should_track(self, obj: AbstractBaseUser, created: bool) -> bool:
        # A profile edit saves the user again: only the first save is the sign-up.
        return created and self.is_sign_up(obj)

    def is_sign_up(self, user: AbstractBaseUser) -> bool:
        """Whether the new *user* is a visitor who signed up.

        Not: staff and superusers (an admin account is no customer),
        ``createsuperuser``'s users (whatever flags a custom model gives them), and
        users a member of staff creates while signed in (the admin's "Add user").
        """
        if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
            return False
        return not made_by_createsuperuser() and not added_by_staff()

    def get_user(self, obj: AbstractBaseUser) -> Mapping[str, object]:
        identity: dict[str, object] = {"external_id": str(obj.pk)}
        for key, value in (
            ("email", getattr(obj, obj.get_email_field_name(), None)),
            ("first_name", getattr(obj, "first_name", None)),
            ("last_name", getattr(obj, "last_name", None)),
        ):
            # Blank is how a user model says "not given"; the API takes no empty value.
            if isinstance(value, str) and value.strip():
                identity[key] = value
        return identity

    def get_backfill_queryset(
        self, since: datetime, until: datetime | None
    ) -> QuerySet[AbstractBaseUser]:
        if self.date_field is not None:
            try:
                self.model._meta.get_field(self.date_field)
            except FieldDoesNotExist:
                raise CapiConfigurationError(
                    f"{type(self).__name__}.date_field is {self.date_field!r}, which "
                    + f"{self.model._meta.label} does not have: subclass it with "
                    + "date_field set to the field holding when a user signed up, and "
                    + "name the subclass in OPENAI_CAPI_USER_CONVERSION."
                ) from None
        return super().get_backfill_queryset(since, until)


def made_by_createsuperuser() -> bool:
    """Whether ``createsuperuser`` (or a command extending it) is on the call stack.

    A custom user model's ``create_superuser`` may set no flag this app knows, so the
    command itself is looked for; only a new user's save pays for the walk.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == CREATESUPERUSER:
            return True
        frame = frame.f_back
    return False


def added_by_staff() -> bool:
    """Whether the request creating the user is a signed-in member of staff's."""
    request = current_request()
    if request is None:
        return False
    creator = getattr(request, "user", None)
    return bool(
        creator is not None
        and creator.is_authenticated
        and getattr(creator, "is_staff", False)
    )
