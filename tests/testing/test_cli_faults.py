"""The faults of ``python -m django_openai_capi.testing``: as a process and in-process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from django_openai_capi.delivery import send_pending
from django_openai_capi.models import ConversionEvent
from django_openai_capi.testing import FakeConversionsAPI, cli
from tests.outbox import MakeEvents
from tests.testing.helpers import live_event

ROOT = Path(__file__).resolve().parents[2]


def post(url: str, *event_ids: str, pixel: str = "test-pixel") -> requests.Response:
    return requests.post(
        url,
        params={"pid": pixel},
        json={"events": [live_event(event_id) for event_id in event_ids or ["e"]]},
        headers={"Authorization": "Bearer test-key"},
        timeout=10,
    )


class Fake:
    """The CLI as a child process; :attr:`url` and :attr:`faults` are its first lines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django_openai_capi.testing", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        self.url = self.stdout.readline().strip()
        self.faults = self.stdout.readline().strip()

    def line(self) -> str:
        return self.stdout.readline().strip()

    def stop(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=10)
        assert self.process.returncode == 0, err
        return out, err


@contextmanager
def serving(*args: str) -> Iterator[Fake]:
    fake = Fake(*args)
    try:
        yield fake
    finally:
        fake.process.kill()
        fake.process.wait()


def test_rejected_events_refuse_their_batch_as_the_api_does():
    with serving("--reject-event", "bad-1", "--reject-event", "bad-2") as fake:
        bad = post(fake.url, "good", "bad-2")
        good = post(fake.url, "good")
        out, _ = fake.stop()

    assert fake.faults == ("faults: rejecting events bad-1, bad-2 (SIGHUP clears them)")
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_event", "events[1]")
    assert error["errors"][0]["message"] == "Rejected by the fake Conversions API."
    assert good.status_code == 200
    assert [line.split()[0] for line in out.splitlines()] == ["400", "200"]


def test_the_next_requests_fail_with_a_status_then_are_answered():
    with serving("--fail-next", "2", "--fail-with", "503") as fake:
        statuses = [post(fake.url).status_code for _ in range(3)]
        first = requests.post(fake.url, timeout=10)
        fake.stop()

    assert fake.faults == ("faults: the next 2 requests HTTP 503 (SIGHUP clears them)")
    assert statuses == [503, 503, 200]
    assert first.status_code == 401


def test_a_named_fault_with_its_retry_after():
    with serving(
        "--fail-next", "1", "--fail-with", "rate_limited", "--retry-after", "9"
    ) as fake:
        response = post(fake.url)
        fake.stop()

    assert fake.faults == ("faults: the next request rate_limited (SIGHUP clears them)")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "9"
    assert response.json()["error"]["message"] == "429: Too many requests"


def test_an_outage_until_stopped_and_sighup_clears_it():
    with serving("--outage", "--fail-with", "auth_backend_failure") as fake:
        during = [post(fake.url).status_code for _ in range(2)]
        fake.process.send_signal(signal.SIGHUP)
        cleared = fake.line()
        while not cleared.startswith("faults:"):
            cleared = fake.line()
        after = post(fake.url).status_code
        fake.stop()

    assert fake.faults == (
        "faults: outage auth_backend_failure until stopped (SIGHUP clears them)"
    )
    assert during == [503, 503]
    assert cleared == "faults: cleared by SIGHUP; answering normally"
    assert after == 200


def test_an_outage_of_some_seconds_ends_by_itself():
    # Long enough for the first request to come during it, even on a busy machine.
    with serving("--outage", "3") as fake:
        during = post(fake.url).status_code
        fake.line()
        ended = fake.line()
        after = post(fake.url).status_code
        fake.stop()

    assert fake.faults == "faults: outage server_error for 3s (SIGHUP clears them)"
    assert during == 500
    assert ended == "faults: the outage is over; answering normally"
    assert after == 200


def test_random_faults_replay_with_a_seed():
    def run() -> list[int]:
        args = ["--fail-randomly", "502=0.5", "--fail-randomly", "drop=0.2"]
        with serving(*args, "--seed", "1") as fake:
            statuses = []
            for _ in range(12):
                try:
                    statuses.append(post(fake.url).status_code)
                except requests.ConnectionError:
                    statuses.append(0)
            fake.stop()
        assert fake.faults == (
            "faults: at random HTTP 502 0.5, drop 0.2 (seed 1) (SIGHUP clears them)"
        )
        return statuses

    first = run()

    assert first == run()
    assert {0, 200, 502} == set(first)


def test_delay_and_latency():
    with serving(
        "--fail-next", "1", "--fail-with", "delay", "--delay", "2", "--latency", "0.1"
    ) as fake:
        started = time.monotonic()
        delayed = post(fake.url)
        delay = time.monotonic() - started
        started = time.monotonic()
        post(fake.url)
        latency = time.monotonic() - started
        fake.stop()

    assert fake.faults == (
        "faults: the next request delay; latency 0.1s (SIGHUP clears them)"
    )
    assert delayed.status_code == 200
    assert delay >= 2
    # Every answer is late by the latency; only the first by the delay.
    assert 0.1 <= latency < 2


def test_no_faults_says_so():
    with serving() as fake:
        fake.stop()

    assert fake.faults == "faults: none"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-next", "-1"], "argument --fail-next: must be at least 1, not -1"),
        (["--fail-next", "two"], "argument --fail-next: 'two' is not a whole number"),
        (
            ["--fail-next", "1", "--fail-with", "600"],
            "argument --fail-with: a fault's HTTP status must be from 400 to 599, "
            "not 600",
        ),
        (
            ["--fail-next", "1", "--fail-with", "timeout"],
            "argument --fail-with: unknown fault 'timeout': use an HTTP status from "
            "400 to 599 or one of auth_backend_failure, bad_gateway, delay,",
        ),
        (
            ["--fail-with", "503"],
            "--fail-with: says what --fail-next or --outage answer; give one",
        ),
        (["--port", "70000"], "argument --port: must be from 0 to 65535, not 70000"),
        (["--port", "http"], "argument --port: 'http' is not a port number"),
        (["--outage", "-5"], "argument --outage: must be a number of seconds, 0 or"),
        (["--latency", "inf"], "argument --latency: must be a number of seconds"),
        (["--delay", "soon"], "argument --delay: 'soon' is not a number of seconds"),
        (["--retry-after", "0"], "argument --retry-after: must be at least 1, not 0"),
        (
            ["--fail-randomly", "drop"],
            "argument --fail-randomly: 'drop' is not FAULT=CHANCE",
        ),
        (
            ["--fail-randomly", "drop=often"],
            "argument --fail-randomly: the chance in 'drop=often' is not a number",
        ),
        (
            ["--fail-randomly", "drop=1.5"],
            "argument --fail-randomly: the chance in 'drop=1.5' must be from 0 to 1",
        ),
        (
            ["--fail-randomly", "drop=0.6", "--fail-randomly", "500=0.6"],
            "--fail-randomly: the chances sum to 1.2, more than 1",
        ),
        (
            ["--fail-randomly", "drop=0.2", "--fail-randomly", "drop=0.3"],
            "--fail-randomly: drop given more than once; give each fault one chance",
        ),
        (
            ["--fail-randomly", "504=0.6", "--fail-randomly", "504=0.6"],
            "--fail-randomly: 504 given more than once",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_option(args, message, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(args)

    assert exit.value.code == 2
    assert message in capsys.readouterr().err


def test_a_port_in_use_is_said_in_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        previous = signal.getsignal(signal.SIGHUP)

        assert cli.main(["--port", str(port)]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"python -m django_openai_capi.testing: cannot listen on 127.0.0.1:{port}: "
        "Address already in use\n"
    )
    assert signal.getsignal(signal.SIGHUP) == previous


def test_without_sighup_as_on_windows_the_fake_still_serves(monkeypatch, capsys):
    monkeypatch.delattr(signal, "SIGHUP")

    def announce(url: str, args: Any, say: Callable[[str], None]) -> None:
        say(url)
        raise cli._Stop  # as SIGTERM would, once it has started

    monkeypatch.setattr(cli, "announce", announce)

    assert cli.main(["--port", "0", "--fail-next", "1"]) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:")


def test_help_says_what_the_app_does_with_each_fault(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])

    text = " ".join(capsys.readouterr().out.split())
    for says in [
        "--reject-event ID refuse a batch holding this event id",
        "marks this event failed; resend it from the admin",
        "--fail-next N answer the next N requests with the --fail-with fault",
        "--outage [SECONDS]",
        "SIGHUP (kill -HUP <pid>) clears every fault",
    ]:
        assert says in text


def in_process(
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    client: Callable[[FakeConversionsAPI], Any],
) -> None:
    """Run ``cli.main(argv)`` here (for coverage), *client* in a thread, then SIGTERM.

    The client starts once the fake has announced itself, as a real one reading the
    URL would.
    """
    created: list[FakeConversionsAPI] = []
    started: list[FakeConversionsAPI] = []
    failures: list[BaseException] = []

    class Recorded(FakeConversionsAPI):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    def announce(*args: Any) -> None:
        announced(*args)
        started.append(created[0])

    announced = cli.announce
    monkeypatch.setattr(cli, "FakeConversionsAPI", Recorded)
    monkeypatch.setattr(cli, "announce", announce)

    def run() -> None:
        while not started:
            time.sleep(0.01)
        try:
            client(started[0])
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    previous = {
        signum: signal.getsignal(signum)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    thread = threading.Thread(target=run)
    thread.start()
    assert cli.main(["--port", "0", *argv]) == 0
    thread.join()
    assert not failures, failures
    assert {signum: signal.getsignal(signum) for signum in previous} == previous


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_in_process_every_fault_then_sighup(monkeypatch, capsys):
    seen: list[int] = []

    def client(fake: FakeConversionsAPI) -> None:
        seen.append(post(fake.url, "x").status_code)  # --fail-next
        seen.append(post(fake.url, "bad").status_code)  # --reject-event
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: fake.latency == 0)
        seen.append(post(fake.url, "bad").status_code)

    in_process(
        monkeypatch,
        [
            "--reject-event",
            "bad",
            "--fail-next",
            "1",
            "--fail-with",
            "504",
            "--fail-randomly",
            "drop=0",
            "--latency",
            "0.01",
        ],
        client,
    )

    assert seen == [504, 400, 200]
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (
        "faults: the next request HTTP 504; at random drop 0; rejecting events "
        "bad; latency 0.01s (SIGHUP clears them)"
    )
    assert "faults: cleared by SIGHUP; answering normally" in lines


def test_in_process_an_outage_until_stopped_then_sighup(monkeypatch, capsys):
    seen: list[int] = []

    def client(fake: FakeConversionsAPI) -> None:
        seen.append(post(fake.url).status_code)
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: post(fake.url).status_code == 200)

    in_process(monkeypatch, ["--outage", "--fail-with", "unknown_pid"], client)

    assert seen == [403]
    out = capsys.readouterr().out
    assert "faults: outage unknown_pid until stopped (SIGHUP clears them)" in out


def test_in_process_an_outage_ends_after_its_seconds(monkeypatch, capsys):
    seen: list[int] = []

    def client(fake: FakeConversionsAPI) -> None:
        seen.append(post(fake.url).status_code)
        wait_for(lambda: post(fake.url).status_code == 200)

    in_process(monkeypatch, ["--outage", "2", "--fail-with", "bad_gateway"], client)

    assert seen == [502]
    out = capsys.readouterr().out
    assert "faults: outage bad_gateway for 2s (SIGHUP clears them)" in out
    assert "faults: the outage is over; answering normally" in out


def test_in_process_chances_that_sum_to_one_are_taken(monkeypatch, capsys):
    # In floats 0.34 + 0.56 + 0.1 is 1.0000000000000002, which is not "more than 1".
    seen: list[int] = []

    def client(fake: FakeConversionsAPI) -> None:
        seen.append(post(fake.url).status_code)

    in_process(
        monkeypatch,
        [
            "--fail-randomly",
            "server_error=0.34",
            "--fail-randomly",
            "500=0.56",
            "--fail-randomly",
            "bad_gateway=0.1",
        ],
        client,
    )

    assert seen[0] in {500, 502}


def test_in_process_sighup_during_a_timed_outage_ends_it_once(monkeypatch, capsys):
    def client(fake: FakeConversionsAPI) -> None:
        assert post(fake.url).status_code == 500
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: post(fake.url).status_code == 200)
        # Past the outage's own end: its timer must not announce it again.
        time.sleep(1.5)

    in_process(monkeypatch, ["--outage", "1"], client)

    out = capsys.readouterr().out
    assert "faults: cleared by SIGHUP; answering normally" in out
    assert "the outage is over" not in out


def test_in_process_a_long_outage_is_cancelled_on_stop(monkeypatch, capsys):
    in_process(monkeypatch, ["--outage", "3600"], lambda fake: None)

    assert "the outage is over" not in capsys.readouterr().out
    # The timer thread is gone, not left to fire into a stopped fake.
    wait_for(
        lambda: not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    )


@pytest.mark.django_db(transaction=True)
def test_delivery_to_the_cli_fake_fails_the_rejected_event_with_its_message(
    make_events: MakeEvents, settings: Any
) -> None:
    make_events(3)
    with serving("--reject-event", "lead-1") as fake:
        settings.OPENAI_CAPI_ENDPOINT = fake.url
        report = send_pending()
        fake.stop()

    assert (report.sent, report.failed) == (2, 1)
    bad = ConversionEvent.objects.get(event_id="lead-1")
    assert bad.status == ConversionEvent.Status.FAILED
    assert "Rejected by the fake Conversions API." in bad.last_error
    assert set(
        ConversionEvent.objects.exclude(event_id="lead-1").values_list(
            "status", flat=True
        )
    ) == {ConversionEvent.Status.SENT}
