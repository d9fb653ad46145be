"""The shop's fork of Oscar's order app: its ``Order`` records the referral code.

As "Customising Oscar" shows it: the customised model is declared before Oscar's
models are imported, so Oscar declares every other model of the app and skips its
own ``Order``.
"""

from __future__ import annotations

from django.db import models
from oscar.apps.order.abstract_models import AbstractOrder


class Order(AbstractOrder):  # type: ignore[misc]
    #: The code the customer entered at checkout (a partner's, a campaign's, or
    #: one the shop's own staff use for test orders).
    referral_code = models.CharField(max_length=32, blank=True)

    def is_test_order(self) -> bool:
        """An order the shop's staff place to try the checkout, not a sale."""
        return self.referral_code.upper().startswith("TEST-")


from oscar.apps.order.models import *  # noqa: E402, F403
