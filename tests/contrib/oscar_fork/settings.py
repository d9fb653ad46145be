"""The Oscar test shop (tests/contrib/oscar) with its order app forked.

Everything is ``tests.contrib.oscar.settings`` but one entry of ``INSTALLED_APPS``:
Oscar's order app is replaced by the fork ``manage.py oscar_fork_app order
tests/contrib/oscar_fork/shop`` generated (tests/contrib/oscar_fork/shop/order), whose
``Order`` has a field of its own.
"""

from __future__ import annotations

from tests.contrib.oscar.settings import *  # noqa: F403
from tests.contrib.oscar.settings import INSTALLED_APPS as _OSCAR_APPS

_OSCAR_ORDER_APP = "oscar.apps.order.apps.OrderConfig"
_FORKED_ORDER_APP = "tests.contrib.oscar_fork.shop.order.apps.OrderConfig"

assert _OSCAR_ORDER_APP in _OSCAR_APPS
INSTALLED_APPS = [
    _FORKED_ORDER_APP if app == _OSCAR_ORDER_APP else app for app in _OSCAR_APPS
]
