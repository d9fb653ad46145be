"""Run the test suite: the main session, the docs session, then one per contrib host.

``python -m tests.run [pytest arguments]`` is what ``make test`` and tox run.

A contrib app registers its conversion for the whole process (an order, a user), and a
host package such as django-oscar brings dozens of apps of its own. So each host gets
a session with its own settings (``tests/contrib/<host>/settings.py``): a new project
with that host, this app and the contrib app, and no ``conversions.py`` of its own.
The documentation's snippets run in a session of their own too (``tests/docs``: a
project with the guides' example app ``shop``). The main session leaves those folders
alone (tests/conftest.py).

Paths among the arguments choose the sessions: ``python -m tests.run tests/contrib/oscar``
runs the oscar session only, ``python -m tests.run tests/test_models.py`` the main one
only. Without paths, every session runs, and the first failure stops the run.
``--coverage`` runs each session under ``coverage run -p`` (tox combines them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The contrib sessions, by host: each folder tests/contrib/<host> with a settings.py.
CONTRIB_SESSIONS = tuple(
    sorted(path.parent.name for path in (ROOT / "tests/contrib").glob("*/settings.py"))
)

#: Every session but the main one, by name: the folder of its tests and settings.py.
#: The docs session runs the documentation's snippets in a project of its own, with the
#: guides' example app ``shop`` (tests/docs/settings.py).
SESSIONS: dict[str, str] = {
    "docs": "tests/docs",
    **{host: f"tests/contrib/{host}" for host in CONTRIB_SESSIONS},
}


def own_session(path: str) -> str | None:
    """The session other than the main one that a path on the command line is in."""
    resolved = (ROOT / path.split("::", 1)[0]).resolve()
    for name, folder in SESSIONS.items():
        if resolved == ROOT / folder or (ROOT / folder) in resolved.parents:
            return name
    return None


def contrib_session(path: str) -> str | None:
    """The contrib session a path on the command line belongs to, if any."""
    name = own_session(path)
    return name if name in CONTRIB_SESSIONS else None


def sessions(args: list[str]) -> list[tuple[str | None, list[str]]]:
    """(session name or None for the main session, its pytest arguments), in order."""
    paths = [arg for arg in args if not arg.startswith("-") and _is_path(arg)]
    options = [arg for arg in args if arg not in paths]
    if not paths:
        return [(None, options)] + [
            (name, [*options, folder]) for name, folder in SESSIONS.items()
        ]
    chosen: dict[str | None, list[str]] = {}
    for path in paths:
        for name, session_path in sessions_of(path):
            chosen.setdefault(name, []).append(session_path)
    return [(name, [*options, *chosen[name]]) for name in chosen]


def sessions_of(path: str) -> list[tuple[str | None, str]]:
    """The sessions a path on the command line runs in, with the path each is given.

    A session's folder (or a file in it) is that session's; a folder above session
    folders (``tests``, ``tests/contrib``) is the main session's and each session's
    below it.
    """
    name = own_session(path)
    if name is not None:
        return [(name, path)]
    found: list[tuple[str | None, str]] = [(None, path)]
    resolved = (ROOT / path).resolve()
    for name, folder in SESSIONS.items():
        if resolved in (ROOT / folder).parents:
            found.append((name, folder))
    return found


def _is_path(arg: str) -> bool:
    return (ROOT / arg.split("::", 1)[0]).exists()


def settings_module(name: str) -> str:
    return SESSIONS[name].replace("/", ".") + ".settings"


def command(name: str | None, args: list[str], *, coverage: bool) -> list[str]:
    runner = (
        ["-m", "coverage", "run", "-p", "-m", "pytest"]
        if coverage
        else ["-m", "pytest"]
    )
    settings = [] if name is None else ["--ds", settings_module(name)]
    return [sys.executable, *runner, *settings, *args]


def main(argv: list[str]) -> int:
    coverage = "--coverage" in argv
    args = [arg for arg in argv if arg != "--coverage"]
    for session, session_args in sessions(args):
        name = (
            "main"
            if session is None
            else f"contrib: {session}"
            if session in CONTRIB_SESSIONS
            else session
        )
        print(f"\n==== pytest session: {name} ====\n", flush=True)
        status = subprocess.call(
            command(session, session_args, coverage=coverage), cwd=ROOT
        )
        if status != 0:
            print(f"\n==== pytest session {name!r} failed (exit {status}) ====")
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
