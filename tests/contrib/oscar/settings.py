"""A new django-oscar shop with this app and its Oscar integration, and nothing else.

No app here has a ``conversions.py``: every event the tests see is registered by
``django_openai_capi.contrib.oscar``. The database and the OPENAI_CAPI_* test
settings are the main session's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import django
from oscar.defaults import *  # noqa: F403  # Oscar's settings, as its docs set them up

from tests.settings import (  # noqa: F401  # the main session's, shared
    DATABASES,
    DEFAULT_AUTO_FIELD,
    OPENAI_CAPI_API_KEY,
    OPENAI_CAPI_DISPATCH,
    OPENAI_CAPI_ENDPOINT,
    OPENAI_CAPI_LEASE_SECONDS,
    OPENAI_CAPI_PIXEL_ID,
    OPENAI_CAPI_RAISE_ERRORS,
    OPENAI_CAPI_RETRY_BACKOFF,
    OPENAI_CAPI_TIMEOUT,
    SECRET_KEY,
    USE_TZ,
)
from tests.settings import INSTALLED_APPS as _MAIN_APPS

if django.VERSION >= (6, 1):
    # Oscar mails the order confirmation: Django 6.1 wants a mailer configured.
    from tests.settings import MAILERS  # noqa: F401

# The Tasks framework (the backport on 5.2, a database backend) as the main session
# has it, without its test and example-project apps.
INSTALLED_APPS = [
    app
    for app in _MAIN_APPS
    if not app.startswith(("tests.", "example_project.")) and "health_check" not in app
] + [
    "django.contrib.sites",
    "django.contrib.flatpages",
    "django.contrib.staticfiles",
    "oscar.config.Shop",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.search.apps.SearchConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.dashboard.apps.DashboardConfig",
    "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
    "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
    "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
    "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
    "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
    "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
    "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
    "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
    "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
    "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
    "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
    "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
    "widget_tweaks",
    "haystack",
    "treebeard",
    "django_tables2",
    # The two lines a shop adds (with the settings it already has for the core app).
    "django_openai_capi.contrib.oscar",
]
assert "django_openai_capi" in INSTALLED_APPS

SITE_ID = 1

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_openai_capi.middleware.OpenAICapiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
    "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
]

ROOT_URLCONF = "tests.contrib.oscar.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The shop's own templates first: its override of Oscar's thank-you page.
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.apps.communication.notifications.context_processors.notifications",
                "oscar.core.context_processors.metadata",
            ],
        },
    }
]

AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]

HAYSTACK_CONNECTIONS = {
    "default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}
}

STATIC_URL = "static/"
# A guest checks out with an email address only.
OSCAR_ALLOW_ANON_CHECKOUT = True
# The simple backend searches the database and keeps no index: Oscar's default
# realtime processor would ask it to index every product saved, which it warns about.
HAYSTACK_SIGNAL_PROCESSOR = "haystack.signals.BaseSignalProcessor"

# Django 6.1 deprecates a call django-oscar 4.2 makes while its apps start
# (select_related() with no fields, in its dashboard's reports): Oscar's to change,
# not this app's. Ignored where the warning is Oscar's own, and nowhere else; pytest
# sets its own filters again around each test, where Oscar raises none.
for _category in (DeprecationWarning, PendingDeprecationWarning):
    warnings.filterwarnings("ignore", category=_category, module=r"oscar\.")
