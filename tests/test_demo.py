"""``make demo`` (example_project/demo.py): stopped however it is, it leaves nothing
running; ``DEMO_FAKE_PORT`` moves the fake and the endpoint the project sends to."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import ROOT, answers, free_port

pytestmark = pytest.mark.skipif(
    shutil.which("make") is None or not Path("/proc/self/stat").exists(),
    reason="needs make, and /proc to find the demo's processes",
)


def demo_environ(database: Path, **variables: str) -> dict[str, str]:
    # None of the caller's settings: the demo as a user starts it, on its own database.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_CAPI_", "DJANGO_", "DEMO_"))
        and key not in {"DATABASE_URL", "MAKEFLAGS", "MFLAGS"}
    }
    env.update(DATABASE_URL=f"sqlite:///{database}", **variables)
    return env


def processes_of_session(session: int) -> dict[int, str]:
    """The live processes of *session* (every process the demo started), by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # ended while we looked
            continue
        # After the command name, which may hold spaces and parentheses.
        state, _ppid, _group, sid = stat[stat.rindex(")") + 2 :].split()[:4]
        if int(sid) == session and state not in {"Z", "X"}:
            found[int(entry.name)] = cmdline
    return found


@dataclass
class Demo:
    make: subprocess.Popen[bytes]
    fake_port: int
    addr_port: int
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def kill(self) -> None:
        """Whatever is left of the demo: a test that failed must not leave it running."""
        for pid in processes_of_session(self.make.pid):
            os.kill(pid, signal.SIGKILL)
        self.make.wait()


def start_demo(
    tmp_path: Path, fake_port: int, addr_port: int, *, via_make: bool = True
) -> Demo:
    output = tmp_path / "demo.out"
    ports = {"DEMO_FAKE_PORT": str(fake_port), "DEMO_ADDR": f"127.0.0.1:{addr_port}"}
    if via_make:
        command = [
            "make",
            "--no-print-directory",
            "demo",
            # The interpreter running the tests, not a .venv to create.
            f"BIN={Path(sys.executable).parent}",
            "STAMP=",
            *(f"{name}={value}" for name, value in ports.items()),
        ]
        environ = demo_environ(tmp_path / "demo.sqlite3")
    else:
        command = [sys.executable, "-m", "example_project.demo"]
        environ = demo_environ(tmp_path / "demo.sqlite3", **ports)
    with output.open("wb") as sink:
        make = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # A session of its own, as a terminal gives: every process the demo starts
            # is in it. SIGINT is delivered, however the suite itself was started.
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    return Demo(make, fake_port, addr_port, output)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """``make demo`` on free ports, serving; whatever is left of it is killed after."""
    yield from serving(start_demo(tmp_path, free_port(), free_port()))


@pytest.fixture
def bare_demo(tmp_path: Path) -> Iterator[Demo]:
    """``python -m example_project.demo`` without make, serving."""
    yield from serving(start_demo(tmp_path, free_port(), free_port(), via_make=False))


def serving(running: Demo) -> Iterator[Demo]:
    try:
        deadline = time.monotonic() + 120
        while True:
            assert running.make.poll() is None, running.text()
            assert time.monotonic() < deadline, running.text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{running.addr_port}/", timeout=5
                ) as page:
                    assert page.status == 200
                break
            except OSError:
                time.sleep(0.5)
        yield running
    finally:
        running.kill()


def test_the_demo_sends_to_the_fake_on_demo_fake_port(demo: Demo) -> None:
    assert answers(demo.fake_port)
    text = demo.text()
    assert (
        f"Fake Conversions API on http://127.0.0.1:{demo.fake_port}/v1/events" in text
    )
    assert "[fake API] 200 pid=demo-pixel events=1" in text
    assert "Conversion events: 5 sent" in text


@pytest.mark.parametrize(
    ("how", "signum"),
    [
        # An IDE's stop button, `docker stop`: SIGTERM to make alone.
        ("make", signal.SIGTERM),
        # Ctrl-C, a closed terminal: the signal to the terminal's foreground group.
        ("group", signal.SIGINT),
        ("group", signal.SIGHUP),
    ],
)
def test_stopping_the_demo_stops_everything_it_started(
    demo: Demo, how: str, signum: signal.Signals
) -> None:
    started = processes_of_session(demo.make.pid)
    assert len(started) >= 4, started  # make, the launcher, the fake, runserver

    if how == "make":
        demo.make.send_signal(signum)
    else:
        os.killpg(demo.make.pid, signum)
    demo.make.wait(timeout=30)
    # The last of them may be a moment behind make.
    deadline = time.monotonic() + 10
    while processes_of_session(demo.make.pid) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert processes_of_session(demo.make.pid) == {}
    assert not answers(demo.fake_port)
    assert not answers(demo.addr_port)
    # make exits by the signal it got itself (SIGTERM, or the terminal's SIGINT and
    # SIGHUP), but the demo exited 0: make adds no "Error 1" or "Interrupt" line.
    assert demo.make.returncode == -signum
    text = demo.text()
    assert f"Demo stopped ({signum.name}): the fake API and the project's" in text
    assert "make: ***" not in text
    assert "Traceback" not in text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_demo_exits_0_after_stopping_everything(
    bare_demo: Demo, signum: signal.Signals
) -> None:
    # Ctrl-C reaches the terminal's foreground group; SIGTERM, the demo alone.
    if signum == signal.SIGINT:
        os.killpg(bare_demo.make.pid, signum)
    else:
        bare_demo.make.send_signal(signum)

    assert bare_demo.make.wait(timeout=30) == 0
    assert processes_of_session(bare_demo.make.pid) == {}
    assert not answers(bare_demo.fake_port)
    assert not answers(bare_demo.addr_port)
    text = bare_demo.text()
    assert text.endswith(
        f"\nDemo stopped ({signum.name}): the fake API and the project's server are "
        + "shut down.\n"
    )
    assert "Traceback" not in text


def test_a_demo_whose_fake_cannot_start_says_why_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = start_demo(tmp_path, port, free_port())
        try:
            demo.make.wait(timeout=60)
        finally:
            demo.kill()

    assert demo.make.returncode != 0
    assert "Address already in use" in demo.text()
    assert "set DEMO_FAKE_PORT to a free port" in demo.text()
    assert "runserver" not in demo.text()
    assert processes_of_session(demo.make.pid) == {}
