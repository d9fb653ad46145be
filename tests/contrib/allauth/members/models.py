"""A custom user model as allauth sites often have: email login, no names, no flags.

No ``first_name``/``last_name`` (a social sign-up's names come from its provider
data), no ``is_staff``/``is_superuser`` (``create_superuser`` makes an owner, which
only the ``createsuperuser`` command tells apart), and a phone the adapter keeps.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.utils import timezone


class MemberManager(BaseUserManager["Member"]):
    def create_user(
        self, email: str, password: str | None = None, **fields: Any
    ) -> Member:
        member = self.model(email=self.normalize_email(email), **fields)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(
        self, email: str, password: str | None = None, **fields: Any
    ) -> Member:
        return self.create_user(email, password, role=Member.Role.OWNER, **fields)


class Member(AbstractBaseUser):
    class Role(models.TextChoices):
        MEMBER = "member"
        OWNER = "owner"

    email = models.EmailField(unique=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    phone = models.CharField(max_length=20, blank=True)
    phone_verified = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[MemberManager] = MemberManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
