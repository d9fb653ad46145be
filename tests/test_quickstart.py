"""docs/quickstart.md, followed as written: a new project delivers an order and a sign-up.

The test reads the page and does what a reader does, in order, in an empty directory:
each ``$ `` command of a ``console`` block runs in a shell whose ``python`` is this
test's (with the checkout's package), each ``python`` block starting ``# <path>`` is
written to that file, or added at its end when the comment says "(add at the end)", and
the commands the page runs in another terminal run in the background. Each shown output
line must appear in what the command printed. A step the test cannot take as written
is in ``SKIPPED`` or ``ADJUSTED``, with the reason, and each of those must still be on
the page: a new step is never passed over in silence.

It spawns its own processes and SQLite database, and never touches the test database.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

import pytest
import requests

from tests.processes import ROOT, answers, descendants, die_with_parent, free_port

QUICKSTART = ROOT / "docs" / "quickstart.md"

#: Commands the test does not run, and why: its own Python is the environment.
SKIPPED = {
    "python -m venv .venv": "the test's Python is the virtual environment",
    "source .venv/bin/activate": "the test's Python is first on PATH",
    "python -m pip install /path/to/django-openai-capi": (
        "the checkout's package is on PYTHONPATH"
    ),
}

#: Commands run otherwise than written, and why.
ADJUSTED = {
    # Interactive: it asks for a password on a terminal. The same command, told the
    # password by the environment variable Django reads for --noinput.
    "python manage.py createsuperuser": (
        "python manage.py createsuperuser --noinput --username admin "
        + "--email admin@example.com"
    ),
    # On a free port, and without the autoreloader, whose server process is a child
    # that die_with_parent() could not reach.
    "python manage.py runserver": "python manage.py runserver {server} --noreload",
}

#: The commands the page runs in another terminal, left running.
BACKGROUND = (
    "python -m django_openai_capi.testing --port 8799",
    "python manage.py runserver",
)

#: The fake's port in the page, replaced by a free one everywhere (settings, output).
FAKE_PORT = "8799"
SUPERUSER_PASSWORD = "quickstart-admin-password"
TIMEOUT = 60

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
FILE_COMMENT = re.compile(r"# (?P<path>[\w./-]+)(?P<append> \(add at the end\))?$")
# What differs from one run to the next in the output the page shows.
VARYING = (
    (re.compile(r"req_[0-9a-f]+"), "req_<id>"),
    (re.compile(r"after \d+ ms"), "after <n> ms"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "<time> UTC"),
)


@dataclass
class Block:
    language: str
    text: str
    #: The prose between the previous block and this one.
    before: str


@dataclass
class Background:
    command: str
    process: subprocess.Popen[bytes]
    log: IO[str]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        for pid in [*descendants(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a child that ignores SIGTERM
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


@dataclass
class Reader:
    """Follows the page in *project*; what it ran and printed is kept for assertions."""

    project: Path
    env: dict[str, str]
    ports: dict[str, int]
    #: BACKGROUND with the fake's port the test chose.
    background_commands: tuple[str, ...]
    outputs: dict[str, str] = field(default_factory=dict)
    background: list[Background] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    def follow(self, blocks: list[Block]) -> None:
        for block in blocks:
            if block.language == "console":
                self.console(block)
            elif block.language == "python":
                self.write_file(block)
            elif block.language == "text":
                # Lines a command left running printed (the fake's request line).
                self.expect(block.text, self.background_output(), "the background")
            else:  # a new kind of block needs a rule here
                pytest.fail(f"no rule for a ```{block.language} block:\n{block.text}")

    def console(self, block: Block) -> None:
        steps: list[tuple[str, list[str]]] = []
        for line in block.text.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                assert steps, f"output before any command: {line!r}"
                steps[-1][1].append(line)
        for command, output in steps:
            self.done.add(command)
            if command in SKIPPED:
                continue
            if command in self.background_commands:
                assert "terminal" in block.before.split("\n\n")[-1], (
                    f"the page must say that {command!r} runs in another terminal"
                )
                self.start(command, "\n".join(output))
            else:
                self.run(command, "\n".join(output))

    def actual(self, command: str) -> str:
        adjusted = ADJUSTED.get(command, command)
        return adjusted.format(server=f"127.0.0.1:{self.ports['server']}")

    def run(self, command: str, shown: str) -> None:
        result = subprocess.run(
            ["bash", "-c", self.actual(command)],
            cwd=self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            preexec_fn=die_with_parent,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, (
            f"$ {command}\nexit {result.returncode}\n{output}"
        )
        self.outputs[command] = output
        self.expect(shown, output, command)

    def start(self, command: str, shown: str) -> None:
        # A file, not a pipe: nobody reads it while the process runs.
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        process = subprocess.Popen(
            ["bash", "-c", f"exec {self.actual(command)}"],
            cwd=self.project,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        running = Background(command, process, log)
        self.background.append(running)
        port = self.ports["fake" if "testing" in command else "server"]
        deadline = time.monotonic() + TIMEOUT
        # Ready once it listens and has printed what the page shows (the fake prints
        # its URL just after it starts listening).
        while not (answers(port) and self.printed(shown, running.output())):
            if process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert process.poll() is None, f"$ {command} ended:\n{running.output()}"
        assert answers(port), f"$ {command} did not start:\n{running.output()}"
        self.expect(shown, running.output(), command)

    def write_file(self, block: Block) -> None:
        first = block.text.partition("\n")[0]
        match = FILE_COMMENT.fullmatch(first)
        assert match, f"a python block must start with '# <path>': {first!r}"
        path = self.project / match["path"]
        if match["append"]:
            assert path.exists(), f"{path.name} to add to does not exist yet"
            with path.open("a") as file:
                file.write("\n" + block.text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)

    @staticmethod
    def printed(shown: str, output: str) -> bool:
        lines = {normalise(line) for line in output.splitlines()}
        return all(normalise(line) in lines for line in shown.splitlines())

    def expect(self, shown: str, output: str, where: str) -> None:
        printed = {normalise(line) for line in output.splitlines()}
        for line in shown.splitlines():
            assert normalise(line) in printed, (
                f"the page shows {line!r}, which {where} did not print:\n{output}"
            )

    def background_output(self) -> str:
        return "\n".join(running.output() for running in self.background)

    def stop(self) -> None:
        for running in reversed(self.background):
            running.stop()


def normalise(line: str) -> str:
    for pattern, replacement in VARYING:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def blocks(page: str) -> list[Block]:
    found, start = [], 0
    for match in FENCE.finditer(page):
        found.append(Block(match[1], match[2], page[start : match.start()].strip()))
        start = match.end()
    return found


def environment() -> dict[str, str]:
    # None of the caller's settings: the project is configured by its own files only.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_CAPI_", "DJANGO_", "DEMO_", "CAPI_TEST_"))
        and key not in {"DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update(
        # The Python running this test, with Django and the package, is the page's
        # `python` and `django-admin`; the checkout is what `pip install` would give.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(ROOT),
        DJANGO_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[Reader]:
    ports = {"fake": free_port(), "server": free_port()}
    commands = tuple(
        command.replace(FAKE_PORT, str(ports["fake"])) for command in BACKGROUND
    )
    reader = Reader(tmp_path, environment(), ports, commands)
    try:
        yield reader
    except BaseException:  # shown with the failure
        print(f"--- in the background:\n{reader.background_output()}")
        raise
    finally:
        reader.stop()


class Event(NamedTuple):
    pk: int
    type: str
    status: str
    #: The JSON sent, as stored.
    payload: dict[str, Any]


def events(database: Path) -> list[Event]:
    """The project's conversion events, in the order they were recorded."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT e.id, e.event_type, e.status, p.json "
            + "FROM django_openai_capi_conversionevent e "
            + "LEFT JOIN django_openai_capi_eventpayload p ON p.event_id = e.id "
            + "ORDER BY e.id"
        ).fetchall()
    return [
        Event(pk, kind, status, json.loads(payload or "{}"))
        for pk, kind, status, payload in rows
    ]


def admin_pages(port: int, *paths: str) -> list[str]:
    """*paths* of the project's admin, logged in as the superuser the page creates."""
    base = f"http://127.0.0.1:{port}"
    with requests.Session() as session:
        login = session.get(f"{base}/admin/login/", timeout=TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token, login.text
        answer = session.post(
            f"{base}/admin/login/",
            data={
                "csrfmiddlewaretoken": token[1],
                "username": "admin",
                "password": SUPERUSER_PASSWORD,
            },
            headers={"Referer": f"{base}/admin/login/"},
            timeout=TIMEOUT,
        )
        assert "/admin/login/" not in answer.url, "the login failed"
        pages = []
        for path in paths:
            page = session.get(f"{base}{path}", timeout=TIMEOUT)
            assert page.status_code == 200, f"{path}: {page.status_code}"
            pages.append(html.unescape(page.text))
        return pages


def test_the_quickstart_delivers_an_order_and_a_sign_up_as_written(
    reader: Reader,
) -> None:
    page = QUICKSTART.read_text()
    assert FAKE_PORT in page

    reader.follow(blocks(page.replace(FAKE_PORT, str(reader.ports["fake"]))))

    # Every step the test skips or changes is still on the page, in the same words.
    assert set(SKIPPED) | set(ADJUSTED) | set(reader.background_commands) <= reader.done
    check = reader.outputs["python manage.py check"]
    assert "System check identified no issues (0 silenced)." in check
    assert "WARNINGS" not in check

    recorded = events(reader.project / "db.sqlite3")
    # The superuser made for the admin is no sign-up: two events, not three.
    assert [(event.type, event.status) for event in recorded] == [
        ("order_created", "sent"),
        ("registration_completed", "sent"),
    ]
    order = recorded[0].payload
    # Decimal("25.99") dollars, and the lines' unit prices, as minor units.
    assert order["data"] == {
        "type": "contents",
        "amount": 2599,
        "currency": "USD",
        "contents": [
            {"id": "MUG-1", "name": "Mug", "quantity": 2, "amount": 900},
            {"id": "TEE-1", "name": "T-shirt", "quantity": 1, "amount": 799},
        ],
    }
    # The fake answered one request of the two events, besides openai_capi_verify's.
    assert re.search(
        r"^200 pid=test-pixel events=2 req_", reader.background_output(), re.MULTILINE
    )

    admin = "/admin/django_openai_capi/conversionevent/"
    changelist, order_page = admin_pages(
        reader.ports["server"], admin, f"{admin}{recorded[0].pk}/change/"
    )
    assert "order_created" in changelist
    assert "registration_completed" in changelist
    assert '"amount": 2599' in order_page
