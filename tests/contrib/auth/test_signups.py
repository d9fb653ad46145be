"""A visitor who signs up on a plain ``django.contrib.auth`` site is a conversion.

The site's sign-up page is the one a Django shop writes (``UserCreationForm``, then
``login``); the event goes through the outbox to the fake Conversions API. The users
a site makes for itself (staff, superusers, ``createsuperuser``, the admin's "Add
user") are not sign-ups.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from django_openai_capi.contrib.auth.conversions import UserConversion
from django_openai_capi.exceptions import CapiConfigurationError
from django_openai_capi.testing import FakeConversionsAPI
from django_openai_capi.tracking.context import serving
from django_openai_capi.tracking.registry import registry
from tests.contrib.signups import VISITOR, delivered, recorded, sha256

pytestmark = pytest.mark.django_db

SIGN_UP = {
    "username": "ada",
    "email": "Ada@Example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "password1": "correct horse battery staple",
    "password2": "correct horse battery staple",
}


def test_the_user_model_is_registered_with_the_apps_conversion() -> None:
    conversion = registry.get(User)

    assert type(conversion) is UserConversion


def test_a_visitor_who_signs_up_is_delivered_as_registration_completed(
    client: Client, fake: FakeConversionsAPI
) -> None:
    response = client.post("/signup/?oppref=opp.signup.1", SIGN_UP, **VISITOR)

    assert response.status_code == 302
    user = User.objects.get(username="ada")
    (event,) = delivered(fake)
    assert event["type"] == "registration_completed"
    assert event["id"] == f"auth.user:{user.pk}"
    assert event["oppref"] == "opp.signup.1"
    assert event["source_url"] == "http://testserver/signup/"
    assert event["user"] == {
        "emails_sha256": [sha256("ada@example.com")],
        "external_ids_sha256": [sha256(str(user.pk))],
        "first_names_sha256": [sha256("ada")],
        "last_names_sha256": [sha256("lovelace")],
        "ip_address": "203.0.113.7",
        "user_agent": VISITOR["HTTP_USER_AGENT"],
    }


def test_saving_the_user_again_records_no_second_sign_up(
    client: Client, fake: FakeConversionsAPI
) -> None:
    client.post("/signup/", SIGN_UP, **VISITOR)
    user = User.objects.get(username="ada")

    user.first_name = "Augusta"
    user.save()
    user.set_password("another one")
    user.save()

    assert len(recorded()) == 1
    assert len(delivered(fake)) == 1


def test_createsuperuser_records_nothing() -> None:
    call_command(
        "createsuperuser",
        interactive=False,
        username="owner",
        email="owner@example.com",
        stdout=StringIO(),
    )

    assert User.objects.filter(username="owner", is_superuser=True).exists()
    assert recorded() == []


@pytest.mark.parametrize(
    "flags",
    [
        {"is_staff": True},
        {"is_superuser": True},
        {"is_staff": True, "is_superuser": True},
    ],
)
def test_staff_and_superusers_are_no_sign_ups(flags: dict[str, Any]) -> None:
    User.objects.create_user("clerk", "clerk@example.com", **flags)

    assert recorded() == []


def test_a_user_a_member_of_staff_adds_in_the_admin_is_no_sign_up(
    client: Client,
) -> None:
    client.force_login(User.objects.create_superuser("boss", "boss@example.com"))

    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "correct horse battery staple",
            "password2": "correct horse battery staple",
        },
    )

    assert response.status_code == 302
    assert User.objects.filter(username="newcomer").exists()
    assert recorded() == []


def test_a_user_created_by_a_signed_in_member_is_a_sign_up() -> None:
    # A site where members invite others: the new user is a customer all the same.
    member = User.objects.create_user("member")
    request = RequestFactory().post("/invite/")
    request.user = member

    with serving(request):
        invited = User.objects.create_user("invited", "invited@example.com")

    assert recorded() == [
        ("registration_completed", "auth.User:" + str(member.pk)),
        ("registration_completed", "auth.User:" + str(invited.pk)),
    ]


def test_a_request_without_authentication_still_records_the_sign_up() -> None:
    # A project without AuthenticationMiddleware has no request.user.
    with serving(RequestFactory().post("/signup/")):
        user = User.objects.create_user("anon")

    assert recorded() == [("registration_completed", f"auth.User:{user.pk}")]


def test_a_raw_save_is_no_sign_up() -> None:
    # loaddata restores users; it does not sign them up.
    User(username="restored").save_base(raw=True)

    assert User.objects.filter(username="restored").exists()
    assert recorded() == []


def test_a_user_without_email_or_names_is_identified_by_id_alone(
    fake: FakeConversionsAPI,
) -> None:
    user = User.objects.create_user("nameless", email="  ")

    (event,) = delivered(fake)

    assert event["user"] == {"external_ids_sha256": [sha256(str(user.pk))]}
    assert "oppref" not in event and "source_url" not in event


def test_backfill_records_the_visitors_who_signed_up_before_the_app(
    fake: FakeConversionsAPI,
) -> None:
    with registry.override(User, None):
        visitor = User.objects.create_user("early", "early@example.com")
        User.objects.create_user("staffer", is_staff=True)
    since = (timezone.now() - timedelta(days=1)).isoformat()

    call_command("openai_capi_backfill", since=since, stdout=StringIO())

    assert recorded() == [("registration_completed", f"auth.User:{visitor.pk}")]
    (event,) = delivered(fake)
    assert event["user"]["emails_sha256"] == [sha256("early@example.com")]


class SignedUpAt(UserConversion):
    date_field = "signed_up_at"


class NoDateField(UserConversion):
    date_field = None


def test_backfill_of_a_model_without_the_date_field_names_the_fix() -> None:
    conversion = SignedUpAt(User)

    with pytest.raises(CapiConfigurationError) as raised:
        conversion.get_backfill_queryset(timezone.now(), None)

    assert str(raised.value) == (
        "SignedUpAt.date_field is 'signed_up_at', which auth.User does not have: "
        "subclass it with date_field set to the field holding when a user signed "
        "up, and name the subclass in OPENAI_CAPI_USER_CONVERSION."
    )


def test_backfill_without_a_date_field_says_so() -> None:
    with pytest.raises(CapiConfigurationError, match="NoDateField has no date_field"):
        NoDateField(User).get_backfill_queryset(timezone.now(), None)


def test_backfill_with_the_date_field_selects_by_it() -> None:
    old = User.objects.create_user(
        "old", date_joined=timezone.now() - timedelta(days=9)
    )
    new = User.objects.create_user("new")

    chosen = UserConversion(User).get_backfill_queryset(
        timezone.now() - timedelta(days=1), None
    )

    assert list(chosen) == [new]
    assert old not in chosen


def test_the_sign_up_time_is_when_the_user_joined(settings: Any) -> None:
    joined = timezone.now() - timedelta(hours=2)
    user = User(username="late", date_joined=joined)

    assert UserConversion(User).get_event_time(user) == joined
