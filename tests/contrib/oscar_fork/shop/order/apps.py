from __future__ import annotations

import oscar.apps.order.apps as apps


class OrderConfig(apps.OrderConfig):  # type: ignore[misc]
    name = "tests.contrib.oscar_fork.shop.order"
