"""A visitor who signs up through django-allauth is a conversion, built with what
allauth knows about them once the sign-up has committed.

Through allauth's own views: the email sign-up (``account_signup``) and a social
sign-up with allauth's offline ``dummy`` provider. The site's user model is a custom
one without names or staff flags (tests/contrib/allauth/members).
"""

from __future__ import annotations

import logging
from io import StringIO
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.apps import apps
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import reverse, reverse_lazy

from django_openai_capi.contrib.allauth.conversions import AllauthUserConversion
from django_openai_capi.testing import FakeConversionsAPI
from django_openai_capi.tracking.registry import registry
from tests.contrib.allauth.members.models import Member
from tests.contrib.signups import VISITOR, delivered, recorded, sha256

pytestmark = pytest.mark.django_db

#: allauth's own sign-up view.
SIGNUP = reverse_lazy("account_signup")
PASSWORD = "correct horse battery staple"
SIGN_UP = {"email": "Ada@Example.com", "password1": PASSWORD, "password2": PASSWORD}
#: What allauth's dummy provider is told about the visitor (its "provider data").
GRACE = {
    "id": "1906",
    "email": "grace@example.com",
    "email_verified": "on",
    "first_name": "Grace",
    "last_name": "Hopper",
    "phone": "+15551234567",
    "phone_verified": "on",
}


def sign_up_socially(client: Client, data: dict[str, str]) -> None:
    """Sign up through the dummy provider: its login, then its authentication form."""
    started = client.post(reverse("dummy_login"), {"process": "login"}, **VISITOR)
    finished = client.post(started["Location"], data, **VISITOR)
    assert finished.status_code == 302, finished.content


def test_the_user_model_is_registered_with_the_apps_conversion() -> None:
    assert type(registry.get(Member)) is AllauthUserConversion


def test_a_visitor_who_signs_up_by_email_is_delivered_as_registration_completed(
    client: Client, fake: FakeConversionsAPI
) -> None:
    response = client.post(f"{SIGNUP}?oppref=opp.allauth.1", SIGN_UP, **VISITOR)

    assert response.status_code == 302
    member = Member.objects.get()
    (event,) = delivered(fake)
    assert event["type"] == "registration_completed"
    assert event["id"] == f"members.member:{member.pk}"
    assert event["oppref"] == "opp.allauth.1"
    assert event["source_url"] == "http://testserver/accounts/signup/"
    assert event["user"] == {
        "emails_sha256": [sha256("ada@example.com")],
        "external_ids_sha256": [sha256(str(member.pk))],
        "ip_address": VISITOR["REMOTE_ADDR"],
        "user_agent": VISITOR["HTTP_USER_AGENT"],
    }


def test_a_social_sign_up_brings_the_providers_names_and_the_phone(
    client: Client, fake: FakeConversionsAPI
) -> None:
    sign_up_socially(client, GRACE)

    member = Member.objects.get()
    (event,) = delivered(fake)
    assert event["user"] == {
        "emails_sha256": [sha256("grace@example.com")],
        "external_ids_sha256": [sha256(str(member.pk))],
        # The user model has no names: they come from the provider's data.
        "first_names_sha256": [sha256("grace")],
        "last_names_sha256": [sha256("hopper")],
        "phone_numbers_sha256": [sha256("15551234567")],
        "ip_address": VISITOR["REMOTE_ADDR"],
        "user_agent": VISITOR["HTTP_USER_AGENT"],
    }


def test_the_email_addresses_are_read_when_the_event_is_built(
    client: Client, fake: FakeConversionsAPI
) -> None:
    client.post(SIGNUP, SIGN_UP, **VISITOR)
    member = Member.objects.get()
    # Stored after the event was recorded, before it is built: all are read then.
    EmailAddress.objects.filter(user=member).update(primary=False)
    EmailAddress.objects.create(user=member, email="work@example.com", primary=True)
    EmailAddress.objects.create(user=member, email="old@example.com", verified=True)
    EmailAddress.objects.create(user=member, email="typo@exmaple.com")

    (event,) = delivered(fake)

    # The primary first, then the verified one, then the user's own (the first
    # address, unverified and no longer primary, but the one they signed up with).
    assert event["user"]["emails_sha256"] == [
        sha256("work@example.com"),
        sha256("old@example.com"),
        sha256("ada@example.com"),
    ]


def test_a_social_account_whose_provider_is_gone_gives_no_names(
    fake: FakeConversionsAPI, caplog: pytest.LogCaptureFixture
) -> None:
    member = Member.objects.create_user("left@example.com")
    account = SocialAccount.objects.create(
        user=member, provider="gone", uid="7", extra_data={"first_name": "Lost"}
    )

    with caplog.at_level(logging.WARNING, logger="django_openai_capi.contrib"):
        (event,) = delivered(fake)

    assert "first_names_sha256" not in event["user"]
    assert event["user"]["emails_sha256"] == [sha256("left@example.com")]
    (message,) = caplog.messages
    assert message.startswith(
        f"The names of members.Member's social account {account.pk} (provider "
        + "'gone') were not read for its sign-up event: "
    )


def test_a_site_without_allauth_socialaccount_reads_no_social_accounts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member = Member.objects.create_user("plain@example.com")
    SocialAccount.objects.create(
        user=member, provider="dummy", uid="2", extra_data=GRACE
    )
    installed = apps.is_installed
    monkeypatch.setattr(
        apps,
        "is_installed",
        lambda name: name != "allauth.socialaccount" and installed(name),
    )
    conversion = AllauthUserConversion(Member)

    loaded = conversion.get_queryset().get(pk=member.pk)

    assert conversion.get_user(loaded) == {
        "email": ["plain@example.com"],
        "external_id": str(member.pk),
    }


def test_an_adapter_that_keeps_no_phones_gives_none(settings: Any) -> None:
    settings.ACCOUNT_ADAPTER = "allauth.account.adapter.DefaultAccountAdapter"
    member = Member.objects.create_user("nophone@example.com", phone="+15550000000")

    assert AllauthUserConversion(Member).get_phone(member) is None


def test_a_member_without_a_phone_has_none() -> None:
    member = Member.objects.create_user("quiet@example.com")

    assert AllauthUserConversion(Member).get_phone(member) is None


def test_createsuperuser_records_nothing_whatever_the_model_calls_an_owner() -> None:
    call_command(
        "createsuperuser",
        interactive=False,
        email="owner@example.com",
        stdout=StringIO(),
    )

    assert Member.objects.get().role == Member.Role.OWNER
    assert recorded() == []


def test_an_owner_created_in_code_is_a_sign_up() -> None:
    # Only the command is known to make a site's own accounts: a model without staff
    # flags gives nothing else to go by, and the project's subclass can say more.
    owner = Member.objects.create_superuser("cofounder@example.com")

    assert recorded() == [("registration_completed", f"members.Member:{owner.pk}")]


def test_a_sign_up_that_fails_after_the_user_is_saved_keeps_the_event_with_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "allauth.account.forms.setup_user_email", fail_after_the_user_is_saved
    )

    with pytest.raises(RuntimeError, match="after the user"):
        client.post(SIGNUP, SIGN_UP, **VISITOR)

    # Without ATOMIC_REQUESTS allauth leaves the user; the event was written with it
    # (user_signed_up, sent at the end, would never have come).
    member = Member.objects.get()
    assert recorded() == [("registration_completed", f"members.Member:{member.pk}")]


def test_with_atomic_requests_a_failed_sign_up_leaves_neither(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)
    monkeypatch.setattr(
        "allauth.account.forms.setup_user_email", fail_after_the_user_is_saved
    )

    with pytest.raises(RuntimeError, match="after the user"):
        client.post(SIGNUP, SIGN_UP, **VISITOR)

    assert not Member.objects.exists()
    assert recorded() == []


def fail_after_the_user_is_saved(*args: object, **kwargs: object) -> None:
    raise RuntimeError("failed after the user was saved")


def test_a_provider_that_gives_a_first_name_only_gives_that() -> None:
    member = Member.objects.create_user("prince@example.com")
    SocialAccount.objects.create(
        user=member, provider="dummy", uid="3", extra_data={"first_name": "Prince"}
    )
    conversion = AllauthUserConversion(Member)

    identity = conversion.get_user(conversion.get_queryset().get(pk=member.pk))

    assert identity["first_name"] == "Prince"
    assert "last_name" not in identity


def test_a_member_without_any_email_is_identified_by_id_alone() -> None:
    member = Member.objects.create_user("")
    conversion = AllauthUserConversion(Member)

    identity = conversion.get_user(conversion.get_queryset().get(pk=member.pk))

    assert identity == {"external_id": str(member.pk)}
