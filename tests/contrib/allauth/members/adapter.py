"""An account adapter that keeps phone numbers, as allauth's docs show one."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter

from tests.contrib.allauth.members.models import Member


class PhoneAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def set_phone(self, user: Member, phone: str, verified: bool) -> None:
        user.phone, user.phone_verified = phone, verified
        user.save(update_fields=["phone", "phone_verified"])

    def get_phone(self, user: Member) -> tuple[str, bool] | None:
        return (user.phone, user.phone_verified) if user.phone else None

    def set_phone_verified(self, user: Member, phone: str) -> None:
        self.set_phone(user, phone, True)

    def get_user_by_phone(self, phone: str) -> Member | None:
        return Member.objects.filter(phone=phone).first()

    def send_verification_code_sms(
        self, user: Member, phone: str, code: str, **kwargs: Any
    ) -> None:
        pass
