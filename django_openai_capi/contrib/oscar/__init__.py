"""django-oscar support: an order placed through Oscar's checkout is ``order_created``.

Add ``"django_openai_capi.contrib.oscar"`` to ``INSTALLED_APPS`` beside Oscar's apps:
its ``ready()`` registers :class:`~.conversions.OrderConversion` (or the subclass
``OPENAI_CAPI_OSCAR_CONVERSION`` names) for Oscar's ``Order`` model, forked or not, and
its system checks say when django-oscar is missing, too old, or the setting is wrong.
"""
