"""Delivery: claiming due events, sending them in batches, and recording what came back.

``send_pending`` (``worker.py``) is the one entry point; the command, the on-commit
wake-up and the task all call it, so there is one claim and one policy.
"""

from __future__ import annotations

from django_openai_capi.delivery.report import DeliveryReport
from django_openai_capi.delivery.worker import send_pending

__all__ = ["DeliveryReport", "send_pending"]
