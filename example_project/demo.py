"""``python -m example_project.demo``, what ``make demo`` runs: the example project,
sending to a local fake of the Conversions API, all of it stopped together.

It starts the fake, migrates, creates the superuser ``admin``, records the demo data,
sends what is due and serves the project until it is stopped, and it stops whatever
it started however it is stopped: Ctrl-C, SIGTERM (an IDE's stop button, ``docker
stop``, which reach it through ``make``), SIGHUP (the terminal closed), or a step that
fails. Stopped by a signal, it says so and exits 0 once everything is down; a step
that fails gives that step's exit status. Each child runs in a process group of its own, which is ended as a whole:
``runserver``'s autoreloader serves from a child of its own, which would otherwise
keep the port. Only SIGKILL, which no process can catch, leaves the children behind.

``DEMO_FAKE_PORT`` moves the fake, and the example project's default endpoint with it
(settings.py reads the same variable); ``DEMO_ADDR`` is where the project is served.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO

import environ
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parent.parent

#: The fake's port, and so the demo's endpoint, unless DEMO_FAKE_PORT says otherwise.
DEFAULT_FAKE_PORT = 8001
#: Where the project is served, unless DEMO_ADDR says otherwise.
DEFAULT_ADDR = "127.0.0.1:8000"
#: How long a child is given to stop on SIGTERM before it is killed.
STOP_TIMEOUT = 5.0

_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

_CREATE_ADMIN = (
    "from django.contrib.auth import get_user_model; User = get_user_model(); "
    'User.objects.filter(username="admin").exists() or '
    'User.objects.create_superuser("admin", "admin@example.com", "admin")'
)


def fake_port(environ: Mapping[str, str]) -> int:
    """The port of the demo's fake API: ``DEMO_FAKE_PORT``, or 8001."""
    value = environ.get("DEMO_FAKE_PORT", "").strip()
    if not value:
        return DEFAULT_FAKE_PORT
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ImproperlyConfigured(
            f"Environment variable DEMO_FAKE_PORT is not valid: {value!r} is not a "
            + "port number (1 to 65535). Set it to a free port, or unset it for 8001."
        )
    return int(value)


class StepFailed(Exception):
    """A step of the demo ended with a non-zero exit status."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what} failed (exit status {code}).")
        self.code = code


class _Stopped(BaseException):
    """Raised in the main thread by a stopping signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


class Children:
    """The processes the demo started, each the leader of its own process group."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        self.started: list[subprocess.Popen[str]] = []
        # Threads copying a child's output to ours, with the pipe each reads.
        self.relays: list[tuple[threading.Thread, IO[str]]] = []

    def start(
        self, *args: str, stdout: int | IO[str] | None = None
    ) -> subprocess.Popen[str]:
        child = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, *args],
            cwd=ROOT,
            env=self.environ,
            stdout=stdout,
            text=True,
            # Its own group: stopping it reaches every process it starts in turn.
            process_group=0,
        )
        self.started.append(child)
        return child

    def run(self, what: str, *args: str) -> None:
        code = self.start(*args).wait()
        if code:
            raise StepFailed(what, code)

    def stop_all(self) -> None:
        """End every group the demo started, newest first; SIGKILL after a wait."""
        for child in reversed(self.started):
            # A leader reaped earlier (a finished step) is skipped: its pid, and so its
            # group id, may belong to another process by now.
            if child.poll() is not None:
                continue
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            # What is left of the group (the leader's own children), at once: a group
            # id stays taken while any member lives.
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
        # Their children are gone, so each pipe is at its end: the relay has printed
        # the last lines, and the pipe is closed rather than left to the interpreter.
        for relay, stream in self.relays:
            relay.join(timeout=STOP_TIMEOUT)
            stream.close()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _start_fake(children: Children, port: int) -> str:
    fake = children.start(
        "-m",
        "django_openai_capi.testing",
        "--port",
        str(port),
        "--api-key",
        "demo-key",
        "--pixel",
        "demo-pixel",
        stdout=subprocess.PIPE,
    )
    assert fake.stdout is not None
    # Its first line is its URL, once it listens; nothing, if it could not.
    url = fake.stdout.readline().strip()
    if not url:
        raise StepFailed(
            f"Starting the fake Conversions API on 127.0.0.1:{port} (its error is "
            + "above: is an earlier demo still running? Stop it, or set "
            + "DEMO_FAKE_PORT to a free port)",
            fake.wait() or 1,
        )
    relay = threading.Thread(target=_relay, args=(fake.stdout,), daemon=True)
    relay.start()
    children.relays.append((relay, fake.stdout))
    return url


def _relay(stream: IO[str]) -> None:
    for line in stream:
        print(f"[fake API] {line}", end="", flush=True)


def prepare_database(children: Children) -> None:
    """Migrate, and create the superuser admin (password admin) if it is missing."""
    children.run("manage.py migrate", "manage.py", "migrate", "--noinput")
    children.run(
        "Creating the superuser admin",
        "manage.py",
        "shell",
        "--verbosity",
        "0",
        "--command",
        _CREATE_ADMIN,
    )


def run_demo(children: Children, port: int, addr: str) -> int:
    url = _start_fake(children, port)
    print(f"Fake Conversions API on {url} (key demo-key, pixel demo-pixel)", flush=True)
    prepare_database(children)
    children.run("manage.py demo_data", "manage.py", "demo_data")
    print(
        "Sweeping up anything the on-commit sends missed (the worker command's job):",
        flush=True,
    )
    children.run("manage.py openai_capi_send", "manage.py", "openai_capi_send")
    print(
        f"\n  Admin: http://{addr}/admin/  (login admin / admin)"
        + f"\n  Sent events: http://{addr}/admin/django_openai_capi/conversionevent/"
        + f"\n  Delivery status: http://{addr}/admin/django_openai_capi/deliverystatus/"
        + "\n",
        flush=True,
    )
    return children.start("manage.py", "runserver", addr).wait()


def main() -> int:
    # No options: the environment configures the demo, as it does the project, and
    # the same .env file, so that DEMO_FAKE_PORT there moves the fake with the endpoint.
    if (ROOT / ".env").is_file():
        environ.Env.read_env(ROOT / ".env")
    try:
        port = fake_port(os.environ)
    except ImproperlyConfigured as exc:
        print(exc, file=sys.stderr)
        return 2
    addr = os.environ.get("DEMO_ADDR", "").strip() or DEFAULT_ADDR
    children = Children({**os.environ, "DEMO_FAKE_PORT": str(port)})
    stopped_by: int | None = None
    try:
        for signum in _STOPPING_SIGNALS:
            # One ignored from the start (nohup, a background job) stays ignored.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, _raise_stopped)
        return run_demo(children, port, addr)
    except StepFailed as exc:
        print(exc, file=sys.stderr)
        return exc.code
    except _Stopped as exc:
        stopped_by = exc.signum
        # Stopping is how a demo ends, not a failure: 0, so that make adds no
        # "Error 1" or "Interrupt" of its own (on a Ctrl-C make still gets SIGINT
        # itself and exits by it, silently, once this process has exited 0).
        return 0
    finally:
        # A second signal must not cut the teardown short.
        for signum in _STOPPING_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        children.stop_all()
        if stopped_by is not None:
            _say(
                f"\nDemo stopped ({signal.Signals(stopped_by).name}): the fake API "
                + "and the project's server are shut down."
            )


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except OSError:
        # The terminal is gone (SIGHUP): there is no one to tell.
        pass


if __name__ == "__main__":
    raise SystemExit(main())
