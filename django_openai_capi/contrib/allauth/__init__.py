"""Sign-ups through django-allauth (65 or later): each is ``registration_completed``.

Add ``"django_openai_capi.contrib.allauth"`` to ``INSTALLED_APPS`` (instead of
``django_openai_capi.contrib.auth``, whose conversion this one extends).

Why the user's save and not allauth's ``user_signed_up``: allauth's sign-up is not
atomic. It saves the user, then runs the form's ``custom_signup``, stores the email
addresses (and for a social sign-up the social account), and only then sends
``user_signed_up``. Recorded on that signal, the event would be written after the user
had been committed (without ``ATOMIC_REQUESTS``), and anything raising in between would
leave a user with no event. Recorded on the user's ``post_save``, the event is written
by the same database session right after the user's ``INSERT``, inside whatever
transaction wraps it: with ``ATOMIC_REQUESTS = True`` (or an ``atomic`` block of the
host's) the event exists exactly when the user does.

What allauth stores after the user (the primary and verified ``EmailAddress``es, the
phone, a social account's names) is read when the event is built, after the commit.
"""
