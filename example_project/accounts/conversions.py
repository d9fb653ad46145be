"""A new sign-up is a ``registration_completed`` conversion (``data.type`` ``customer_action``).

No amount: a registration is worth nothing the shop could count in money, and
``customer_action`` data may not carry contents anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from django_openai_capi import EventType, ModelConversion, register
from example_project.accounts.models import Registration
from example_project.demo_site import page_url


@register(Registration)
class RegistrationConversion(ModelConversion[Registration]):
    event_type = EventType.REGISTRATION_COMPLETED
    date_field = "created_at"

    # should_track is the default (the first save only): a profile edit that saves
    # the registration again is not a second sign-up.

    def get_user(self, obj: Registration) -> Mapping[str, object]:
        # Raw; hashed by the library. The external id is the same one the site would
        # give the pixel, so both sides describe one person the same way.
        return {"email": obj.email, "external_id": str(obj.external_id)}

    def get_source_url(self, obj: Registration) -> str:
        return page_url("/accounts/welcome")
