"""django-health-check support: ``backends.OpenAIConversions``, a check of delivery.

Needs django-health-check 4.8 or later, which the ``health`` extra installs.
Adding this app to ``INSTALLED_APPS`` is optional; it adds a system check that says
when django-health-check is missing or too old.
"""
