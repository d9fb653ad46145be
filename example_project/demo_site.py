"""Where the demo's conversions say they happened.

Orders, sign-ups and subscriptions are also made in the admin and by ``demo_data``,
where no storefront page is involved. A conversion sent with ``action_source: "web"``
needs the ``source_url`` of the page it happened on, so the conversions name the pages
a real site would have, on the origin set by ``DEMO_SITE_ORIGIN``.
"""

from __future__ import annotations

from django.conf import settings

#: The docs' own example shop; used when the project does not set DEMO_SITE_ORIGIN.
DEFAULT_ORIGIN = "https://shop.example.com"


def page_url(path: str) -> str:
    """The absolute URL of *path* (``"/checkout/confirmation"``) on the demo site."""
    # getattr: the test suite runs these apps under its own settings, which do not
    # define the demo's origin.
    origin: str = getattr(settings, "DEMO_SITE_ORIGIN", DEFAULT_ORIGIN)
    return origin.rstrip("/") + path
