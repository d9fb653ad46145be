"""The Celery app of the test suite: ``celery -A tests.celery_app worker -Q default``.

django-tasks-fennel publishes every task to the queue its Tasks-framework task names,
``"default"``, and rebuilds the task's queue from the routing key on the worker. The
broker is shared with other test runs, so this app keeps the name ``"default"`` and
the routing key, but maps them to a queue and a topic exchange of this session's own
(``CAPI_TEST_CELERY_QUEUE``): a run never consumes another run's jobs. (A direct
exchange would not do: Celery publishes to a direct queue by its real name, which
then comes back to fennel as the task's queue.)
"""

from __future__ import annotations

from celery import Celery
from django.conf import settings
from kombu import Exchange, Queue

app = Celery("django_openai_capi_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")


def session_queue() -> Queue:
    name = settings.CAPI_TEST_CELERY_QUEUE
    # Deleted by the broker after 10 idle minutes if a run dies before its cleanup.
    return Queue(
        name,
        Exchange(name, type="topic", auto_delete=True),
        routing_key="default",
        expires=600,
    )


queue = session_queue()
app.conf.task_queues = [queue]
app.amqp.queues["default"] = queue
# The worker imports django_openai_capi.tasks, which registers the task with Celery.
app.autodiscover_tasks()
