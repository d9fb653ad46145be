"""``AllauthUserConversion``: the sign-up, with the identity allauth knows.

Only defined here; ``apps.py`` registers it (or the class ``OPENAI_CAPI_USER_CONVERSION``
names). Imports allauth's models: import it only with allauth installed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from allauth.account.adapter import get_adapter
from django.apps import apps
from django.contrib.auth.base_user import AbstractBaseUser

from django_openai_capi.contrib.auth.conversions import UserConversion
from django_openai_capi.redaction import describe_exception

if TYPE_CHECKING:
    from django.db.models.query import QuerySet

SOCIALACCOUNT_APP = "allauth.socialaccount"

logger = logging.getLogger("django_openai_capi.contrib")


class AllauthUserConversion(UserConversion):
    """A sign-up through allauth (a form or a social account), identified as allauth knows.

    On top of :class:`UserConversion`'s identity: the primary email address and the
    other verified ones, the phone number where the account adapter stores one, and
    the names a social provider gave where the user model holds none.
    """

    def get_queryset(self) -> QuerySet[AbstractBaseUser]:
        related = ["emailaddress_set"]
        if apps.is_installed(SOCIALACCOUNT_APP):
            related.append("socialaccount_set")
        return super().get_queryset().prefetch_related(*related)

    def get_user(self, obj: AbstractBaseUser) -> Mapping[str, object]:
        identity = dict(super().get_user(obj))
        emails = self.get_emails(obj)
        if emails:
            identity["email"] = emails
        phone = self.get_phone(obj)
        if phone:
            identity["phone"] = phone
        for key, value in self.get_social_names(obj).items():
            identity.setdefault(key, value)
        return identity

    def get_emails(self, user: AbstractBaseUser) -> list[str]:
        """The primary address, the other verified ones, then the user model's own.

        The API keeps the first three valid ones, so the best come first. An
        unverified address that is not primary may be a typo, and is left out.
        """
        addresses = sorted(
            user.emailaddress_set.all(),  # type: ignore[attr-defined]
            key=lambda address: (not address.primary, not address.verified, address.pk),
        )
        candidates = [
            address.email
            for address in addresses
            if address.primary or address.verified
        ]
        candidates.append(getattr(user, user.get_email_field_name(), None) or "")
        emails: list[str] = []
        seen: set[str] = set()
        for email in candidates:
            folded = email.strip().lower()
            if folded and folded not in seen:
                seen.add(folded)
                emails.append(email)
        return emails

    def get_phone(self, user: AbstractBaseUser) -> str | None:
        """The phone number the account adapter stores for *user*, if it stores any."""
        try:
            found = get_adapter().get_phone(user)
        except NotImplementedError:
            # allauth's default adapter keeps no phone numbers.
            return None
        if not found:
            return None
        phone: str = found[0]
        return phone or None

    def get_social_names(self, user: AbstractBaseUser) -> dict[str, str]:
        """First and last name from the user's social accounts' provider data."""
        if not apps.is_installed(SOCIALACCOUNT_APP):
            return {}
        names: dict[str, str] = {}
        accounts: Any = user.socialaccount_set.all()  # type: ignore[attr-defined]
        for account in sorted(accounts, key=lambda account: account.pk):
            try:
                provider = account.get_provider()
                fields = provider.extract_common_fields(account.extra_data)
            except Exception as exc:
                # A provider removed from the settings since the sign-up: its names
                # are a bonus, not worth failing the sign-up's event over.
                logger.warning(
                    "The names of %s's social account %s (provider %r) were not "
                    + "read for its sign-up event: %s",
                    self.model._meta.label,
                    account.pk,
                    account.provider,
                    describe_exception(exc),
                )
                continue
            for key in ("first_name", "last_name"):
                value = fields.get(key)
                if isinstance(value, str) and value.strip():
                    names.setdefault(key, value)
        return names
