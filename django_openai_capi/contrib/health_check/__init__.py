"""django-health-check support: ``backends.OpenAIConversions``, a check of delivery.

Installed with the ``health`` extra (``pip install 'django-openai-capi[health]'``).
Adding this app to ``INSTALLED_APPS`` is optional; it adds a system check that says
when django-health-check is missing or too old.
"""
