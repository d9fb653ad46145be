"""Sign-ups through ``django.contrib.auth``: each new user is ``registration_completed``.

Add ``"django_openai_capi.contrib.auth"`` to ``INSTALLED_APPS``: it registers
:class:`~django_openai_capi.contrib.auth.conversions.UserConversion` (or the subclass
``OPENAI_CAPI_USER_CONVERSION`` names) for ``AUTH_USER_MODEL``. Staff, superusers,
users made by ``createsuperuser`` and users a member of staff adds are not sign-ups.
"""
