from __future__ import annotations

import oscar.apps.order.apps as apps


class OrderConfig(apps.OrderConfig):
    name = "tests.contrib.oscar_fork.shop.order"
