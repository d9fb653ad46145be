"""The forked shop's own order conversion, named by OPENAI_CAPI_OSCAR_CONVERSION."""

from __future__ import annotations

from typing import Any

from django_openai_capi.contrib.oscar.conversions import OrderConversion


class ReferralOrderConversion(OrderConversion):
    """Leaves out the orders the shop's staff place with a test referral code.

    The referral code itself is not sent: ``order_created`` carries ``contents`` data,
    which has no custom fields, and the user object takes identity only.
    """

    def should_track(self, obj: Any, created: bool) -> bool:
        return super().should_track(obj, created) and not obj.is_test_order()
