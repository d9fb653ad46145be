"""A new django-allauth site (email sign-up, a social provider) on a custom user model,
with sign-ups tracked by ``django_openai_capi.contrib.allauth`` and no
``conversions.py`` of its own.

The database, the ``OPENAI_CAPI_*`` test settings and the middleware (the app's among
them) are the main suite's; the apps are a new project's.
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    # allauth's offline provider: a social sign-up without a network.
    "allauth.socialaccount.providers.dummy",
    "django_openai_capi",
    "django_openai_capi.contrib.allauth",
    "tests.contrib.allauth.members",
]
# Nothing here enqueues a task (OPENAI_CAPI_DISPATCH = "none").
TASKS = {}
SITE_ID = 1

AUTH_USER_MODEL = "members.Member"
MIDDLEWARE = [*MIDDLEWARE, "allauth.account.middleware.AccountMiddleware"]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "tests.contrib.allauth.members.adapter.PhoneAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "optional"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False

ROOT_URLCONF = "tests.contrib.allauth.urls"
