"""``python -m django_openai_capi.testing``, in-process and as a real process."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from django_openai_capi.testing import FakeConversionsAPI, cli
from tests.testing.helpers import live_event

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-svcacct-do-not-print"


def post(url, pixel, key, events):
    return requests.post(
        url,
        params={"pid": pixel},
        json={"events": events},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def announce_after_start(monkeypatch, created, started):
    """Put the fake in *started* once its first lines are out, as a reader sees it."""
    announced = cli.announce

    def announce(*args):
        announced(*args)
        started.extend(created)

    monkeypatch.setattr(cli, "announce", announce)


def test_main_serves_until_sigterm_and_prints_one_line_per_request(monkeypatch, capsys):
    started: list[FakeConversionsAPI] = []

    class Recorded(FakeConversionsAPI):
        def start(self, *args, **kwargs):
            running = super().start(*args, **kwargs)
            created.append(self)
            return running

    created: list[FakeConversionsAPI] = []
    monkeypatch.setattr(cli, "FakeConversionsAPI", Recorded)
    announce_after_start(monkeypatch, created, started)
    statuses = []
    urls = []

    def client():
        while not started:
            time.sleep(0.01)
        url = started[0].url
        urls.append(url)
        statuses.append(
            post(url, "p1", SECRET, [live_event("a"), live_event("b")]).status_code
        )
        statuses.append(post(url, "p2", "unscoped", [live_event()]).status_code)
        statuses.append(post(url, "p3", SECRET, [live_event()]).status_code)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=client)
    thread.start()
    code = cli.main(
        [
            "--port",
            "0",
            "--api-key",
            SECRET,
            "--pixel",
            "p1",
            "--pixel",
            "p2",
            "--unscoped-key",
            "unscoped",
            "--latency",
            "0.01",
        ]
    )
    thread.join()

    assert code == 0
    assert statuses == [200, 401, 403]
    assert signal.getsignal(signal.SIGTERM) is previous
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == urls[0]
    assert lines[0].startswith("http://127.0.0.1:")
    assert lines[1] == "faults: latency 0.01s (SIGHUP clears them)"
    assert [line.split()[:3] for line in lines[2:]] == [
        ["200", "pid=p1", "events=2"],
        ["401", "pid=p2", "events=1"],
        ["403", "pid=p3", "events=1"],
    ]
    assert all(line.split()[3].startswith("req_") for line in lines[2:])
    assert SECRET not in "\n".join(lines)
    with pytest.raises(RuntimeError):
        _ = started[0].url  # stopped


def test_main_reports_dropped_and_pixel_less_requests(monkeypatch, capsys):
    started: list[FakeConversionsAPI] = []

    class Dropping(FakeConversionsAPI):
        def start(self, *args, **kwargs):
            self.fail_next("drop")
            running = super().start(*args, **kwargs)
            created.append(self)
            return running

    created: list[FakeConversionsAPI] = []
    monkeypatch.setattr(cli, "FakeConversionsAPI", Dropping)
    announce_after_start(monkeypatch, created, started)

    def client():
        while not started:
            time.sleep(0.01)
        with pytest.raises(requests.ConnectionError):
            requests.post(started[0].url, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=client)
    thread.start()
    cli.main(["--port", "0"])
    thread.join()

    assert capsys.readouterr().out.splitlines()[2].split()[:3] == [
        "dropped",
        "pid=-",
        "events=0",
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_module_runs_as_a_process(signum):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django_openai_capi.testing",
            "--port",
            "0",
            "--api-key",
            SECRET,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        faults = process.stdout.readline().strip()
        response = post(url, "test-pixel", SECRET, [live_event()])
        line = process.stdout.readline()
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()

    assert faults == "faults: none"
    assert response.status_code == 200
    assert line.split()[:3] == ["200", "pid=test-pixel", "events=1"]
    assert process.returncode == 0, err
    assert err == ""
    assert SECRET not in line + out


def test_help_runs_through_main(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m django_openai_capi.testing", "--help"])

    with pytest.raises(SystemExit) as exit:
        runpy.run_module("django_openai_capi.testing", run_name="__main__")

    assert exit.value.code == 0
    assert "--latency" in capsys.readouterr().out


def test_the_main_module_does_nothing_when_imported():
    namespace = runpy.run_module(
        "django_openai_capi.testing.__main__", run_name="imported"
    )

    assert namespace["main"] is cli.main
