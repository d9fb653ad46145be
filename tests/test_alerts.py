"""People are told when delivery goes wrong: once per change of state, never per event.

A pause, the first failure of each kind and events due for too long are each logged at
ERROR with the request id and the fix, signalled (``delivery_alert``) and emailed to
ADMINS (Django's locmem backend under pytest-django), however many workers see them.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import django
import pytest
import responses
from django.core import mail
from django.utils import timezone

from django_openai_capi import alerts, health, signals
from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent, PixelAlert, PixelPause
from tests.outbox import ADMINS, ENDPOINT, MakeEvents, error_envelope

pytestmark = pytest.mark.django_db(transaction=True)

Condition = PixelAlert.Condition
UNAUTHORIZED = {"error": {"message": "Unauthorized", "type": "invalid_request_error"}}
AUTH_OUTAGE = {
    "error": {"message": "503: Authentication backend failure", "type": "server_error"}
}


@pytest.fixture(autouse=True)
def admins(settings: Any) -> None:
    settings.ADMINS = ADMINS
    settings.OPENAI_CAPI_API_KEY = "sk-test-SECRET-do-not-show"


@pytest.fixture
def told() -> Any:
    """The ``delivery_alert`` signals sent during the test."""
    seen: list[alerts.Alert] = []

    def receiver(sender: Any, alert: alerts.Alert, **kwargs: Any) -> None:
        seen.append(alert)

    signals.delivery_alert.connect(receiver)
    yield seen
    signals.delivery_alert.disconnect(receiver)


def test_a_revoked_key_pauses_the_pixel_and_tells_once_with_the_request_id_and_the_fix(
    api: responses.RequestsMock,
    make_events: MakeEvents,
    told: list[alerts.Alert],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.post(
        ENDPOINT,
        status=401,
        json=UNAUTHORIZED,
        headers={"x-request-id": "req-revoked-1"},
    )
    make_events(3)

    with caplog.at_level(logging.ERROR, logger="django_openai_capi.alerts"):
        send_pending()
    # The pause ran out and the key is still refused: the same state, nothing new.
    PixelPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    make_events(2, prefix="later")
    ConversionEvent.objects.update(next_attempt_at=timezone.now())
    send_pending()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert "delivery paused" in message.subject and "test-pixel" in message.subject
    assert "req-revoked-1" in message.body
    assert "HTTP 401" in message.body
    assert "Conversions API key" in message.body  # the fix
    assert "sk-test-SECRET" not in f"{message.subject} {message.body}"
    assert [(a.condition, a.raised, a.request_id) for a in told] == [
        (Condition.PAUSED, True, "req-revoked-1")
    ]
    logged = [r for r in caplog.records if r.name == "django_openai_capi.alerts"]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR
    assert "req-revoked-1" in logged[0].getMessage()


def test_the_end_of_a_pause_is_told_once(
    api: responses.RequestsMock, make_events: MakeEvents, told: list[alerts.Alert]
) -> None:
    api.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    make_events(1)
    send_pending()
    api.replace(responses.POST, ENDPOINT, json={})
    PixelPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
    ConversionEvent.objects.update(next_attempt_at=timezone.now())

    send_pending()
    send_pending()

    assert [(a.condition, a.raised) for a in told] == [
        (Condition.PAUSED, True),
        (Condition.PAUSED, False),
    ]
    assert "recovered" in mail.outbox[1].subject
    assert not PixelAlert.objects.filter(active=True).exists()


def test_the_seed_threads_outage_is_told_at_once_with_openais_status_page(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    api.post(
        ENDPOINT, status=503, json=AUTH_OUTAGE, headers={"x-request-id": "req-503"}
    )
    make_events(1)

    send_pending()

    (message,) = mail.outbox
    assert "Authentication backend failure" in message.body
    assert "req-503" in message.body


def test_a_passing_5xx_is_not_worth_an_email_until_it_lasts(
    api: responses.RequestsMock, make_events: MakeEvents
) -> None:
    api.post(ENDPOINT, status=500, json={"error": {"message": "oops"}})
    make_events(1)

    for attempt in range(1, 4):
        send_pending()
        assert len(mail.outbox) == (0 if attempt < 3 else 1), attempt
        PixelPause.objects.update(paused_until=timezone.now() - timedelta(seconds=1))
        ConversionEvent.objects.update(next_attempt_at=timezone.now())

    assert "3 failed requests" in mail.outbox[0].body


def test_the_first_failure_of_each_kind_is_told_not_every_failed_event(
    api: responses.RequestsMock, make_events: MakeEvents, told: list[alerts.Alert]
) -> None:
    # The API refuses every event on its own, naming it: all of them fail.
    api.add_callback(
        responses.POST,
        ENDPOINT,
        callback=lambda request: (400, {}, error_envelope(0, "bad value")),
    )
    make_events(4)

    send_pending()
    make_events(3, prefix="more")
    send_pending()

    assert ConversionEvent.objects.filter(status="failed").count() == 7
    assert [(a.condition, a.kind) for a in told] == [(Condition.FAILED, "rejected")]
    (message,) = mail.outbox
    assert "events failed" in message.subject
    assert "will not be sent" in message.body


def test_a_failure_alert_lapses_after_a_quiet_day() -> None:
    def failed() -> bool:
        return alerts.raise_alert(
            "p", Condition.FAILED, summary="1 failed", advice="fix", kind="rejected"
        )

    assert failed()
    assert not failed()
    PixelAlert.objects.update(seen_at=timezone.now() - timedelta(hours=25))

    assert failed()
    assert len(mail.outbox) == 2


def test_many_workers_seeing_one_change_tell_it_once() -> None:
    raised = [
        alerts.raise_alert("p", Condition.PAUSED, summary="paused", advice="fix")
        for _ in range(5)
    ]
    cleared = [
        alerts.clear_alert("p", Condition.PAUSED, summary="resumed") for _ in range(5)
    ]

    assert raised == [True, False, False, False, False]
    assert cleared == [True, False, False, False, False]
    assert len(mail.outbox) == 2


def test_a_stopped_worker_is_told_by_whoever_looks_and_its_return_too(
    make_events: MakeEvents, settings: Any
) -> None:
    settings.OPENAI_CAPI_STALE_AFTER = 600
    make_events(2, next_attempt_at=timezone.now() - timedelta(minutes=30))

    alerts.observe(health.assess())
    alerts.observe(health.assess())
    assert len(mail.outbox) == 1
    assert "due events waiting" in mail.outbox[0].subject
    assert "worker" in mail.outbox[0].body

    ConversionEvent.objects.update(status="sent")
    alerts.observe(health.assess())
    assert len(mail.outbox) == 2
    assert "recovered" in mail.outbox[1].subject


def test_no_email_when_opted_out_but_the_log_and_the_signal_still_tell(
    settings: Any, told: list[alerts.Alert], caplog: pytest.LogCaptureFixture
) -> None:
    settings.OPENAI_CAPI_MAIL_ADMINS = False

    with caplog.at_level(logging.ERROR, logger="django_openai_capi.alerts"):
        alerts.raise_alert("p", Condition.PAUSED, summary="paused", advice="fix")

    assert mail.outbox == []
    assert len(told) == 1
    assert "paused" in caplog.text


def test_a_broken_mail_server_or_receiver_never_stops_delivery(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("smtp down")

    def broken_receiver(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    monkeypatch.setattr(alerts, "mail_admins", refuse)
    signals.delivery_alert.connect(broken_receiver)
    try:
        assert alerts.raise_alert("p", Condition.PAUSED, summary="s", advice="a")
    finally:
        signals.delivery_alert.disconnect(broken_receiver)

    assert "Could not email ADMINS about pixel p" in caplog.text
    assert "receiver bug" in caplog.text


def test_an_alert_never_carries_the_key_even_if_an_error_quotes_it() -> None:
    alerts.raise_alert(
        "p",
        Condition.PAUSED,
        summary="refused Bearer sk-test-SECRET-do-not-show here",
        advice="use another key than sk-test-SECRET-do-not-show",
    )

    (message,) = mail.outbox
    assert "sk-test-SECRET" not in message.body
    assert "sk-test-SECRET" not in PixelAlert.objects.get().message


def test_an_alert_of_a_rolled_back_change_is_not_told() -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        alerts.raise_alert("p", Condition.PAUSED, summary="s", advice="a")
        raise RuntimeError("the pause's transaction failed")

    assert mail.outbox == []
    assert not PixelAlert.objects.exists()


def test_a_claim_never_waits_on_the_mail_server(
    api: responses.RequestsMock,
    make_events: MakeEvents,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    make_events(2)
    seen: list[set[str]] = []

    def slow_mail(*args: Any, **kwargs: Any) -> None:
        # What the events were while the mail went out: written back already.
        seen.append(set(ConversionEvent.objects.values_list("status", flat=True)))

    monkeypatch.setattr(alerts, "mail_admins", slow_mail)

    send_pending()

    assert seen == [{"pending"}]


def test_a_database_error_in_an_alert_loses_the_alert_not_the_events(
    api: responses.RequestsMock,
    make_events: MakeEvents,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from django.db import DatabaseError

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise DatabaseError("the alerts table is gone")

    monkeypatch.setattr(alerts, "_raise", broken)
    api.post(ENDPOINT, status=401, json=UNAUTHORIZED)
    make_events(2)

    report = send_pending()

    # Held for the pixel, without using an attempt, as any 401.
    assert report.retried == 2
    assert set(ConversionEvent.objects.values_list("status", "attempts")) == {
        ("pending", 0)
    }
    assert "Could not record the paused alert of pixel test-pixel" in caplog.text
    assert PixelPause.objects.filter(pixel_id="test-pixel").exists()


def test_an_unscoped_look_clears_the_stale_alert_of_a_pixel_it_no_longer_sees() -> None:
    alerts.raise_alert("gone", Condition.STALE, summary="waiting", advice="start")

    alerts.observe(health.assess())

    assert not PixelAlert.objects.filter(pixel_id="gone", active=True).exists()
    assert "recovered" in mail.outbox[-1].subject


@pytest.mark.skipif(
    django.VERSION >= (6, 1),
    reason="Django 6.1's MAILERS set the timeout in their OPTIONS, as README says",
)
def test_a_mail_server_that_never_answers_is_cut_off(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket
    import time

    # Accepts the connection, then never sends SMTP's greeting.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = silent.getsockname()
    monkeypatch.setattr(alerts, "MAIL_TIMEOUT", 0.5)
    try:
        started = time.monotonic()
        assert alerts.raise_alert("p", Condition.PAUSED, summary="s", advice="a")
        took = time.monotonic() - started
    finally:
        silent.close()

    assert took < 5
    assert "Could not email ADMINS about pixel p" in caplog.text


def test_a_worker_that_raises_the_same_alert_a_moment_later_does_not_tell_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db.models.query import QuerySet

    real_update = QuerySet.update
    updates = 0

    def racing_update(self: QuerySet[Any], **values: Any) -> int:
        nonlocal updates
        changed = real_update(self, **values)
        if self.model is PixelAlert:
            updates += 1
            if updates == 2:
                # Another worker inserts the same alert between our update and our
                # insert.
                PixelAlert.objects.create(pixel_id="p", condition=Condition.PAUSED)
        return changed

    monkeypatch.setattr(QuerySet, "update", racing_update)

    told = alerts.raise_alert("p", Condition.PAUSED, summary="s", advice="a")

    assert told is False
    assert PixelAlert.objects.filter(pixel_id="p", active=True).count() == 1


def test_a_database_error_when_clearing_or_listing_alerts_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from django.db import DatabaseError
    from django.db.models.query import QuerySet

    alerts.raise_alert("p", Condition.STALE, summary="s", advice="a")

    def broken(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("read-only replica")

    monkeypatch.setattr(QuerySet, "update", broken)
    assert alerts.clear_alert("p", Condition.STALE, summary="over") is False
    monkeypatch.setattr(QuerySet, "values_list", broken)
    alerts.stale_seen({})

    assert caplog.text.count("Could not record the stale alert") == 2


def test_alerts_held_back_in_nested_blocks_are_told_when_the_outermost_ends() -> None:
    with alerts.held_back():
        with alerts.held_back():
            alerts.raise_alert("p", Condition.PAUSED, summary="s", advice="a")
        assert mail.outbox == []
    assert len(mail.outbox) == 1


def test_an_smtp_connection_without_a_timeout_gets_one() -> None:
    from types import SimpleNamespace

    waits_for_ever = SimpleNamespace(timeout=None)
    before_mailers = SimpleNamespace(get_connection=lambda: waits_for_ever)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(alerts, "mail", before_mailers)
        assert alerts._mail_options() == {"connection": waits_for_ever}
        assert waits_for_ever.timeout == alerts.MAIL_TIMEOUT
        # EMAIL_TIMEOUT said how long: it stands.
        told_how_long = SimpleNamespace(timeout=3.0)
        patch.setattr(
            alerts, "mail", SimpleNamespace(get_connection=lambda: told_how_long)
        )
        alerts._mail_options()
        assert told_how_long.timeout == 3.0
        # Django 6.1's mailers carry their own timeout, in their OPTIONS.
        patch.setattr(alerts, "mail", SimpleNamespace(mailers={}))
        assert alerts._mail_options() == {}


def test_an_alert_reads_as_its_pixel_condition_and_state() -> None:
    alerts.raise_alert("p", Condition.FAILED, kind="rejected", summary="s", advice="a")
    alerts.raise_alert("p", Condition.STALE, summary="s", advice="a")
    alerts.clear_alert("p", Condition.STALE, summary="over")

    assert sorted(str(alert) for alert in PixelAlert.objects.all()) == [
        "p: failed rejected (active)",
        "p: stale (cleared)",
    ]
