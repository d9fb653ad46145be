"""Run the test suite: the main session, then one session per contrib app's host.

``python -m tests.run [pytest arguments]`` is what ``make test`` and tox run.

A contrib app registers its conversion for the whole process (an order, a user), and a
host package such as django-oscar brings dozens of apps of its own. So each host gets
a session with its own settings (``tests/contrib/<host>/settings.py``): a new project
with that host, this app and the contrib app, and no ``conversions.py`` of its own.
The main session leaves those folders alone (tests/conftest.py).

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


def contrib_session(path: str) -> str | None:
    """The contrib session a path on the command line belongs to, if any."""
    parts = Path(path.split("::", 1)[0]).resolve().relative_to(ROOT).parts
    if parts[:2] == ("tests", "contrib") and len(parts) > 2:
        host = parts[2]
        if host in CONTRIB_SESSIONS:
            return host
    return None


def sessions(args: list[str]) -> list[tuple[str | None, list[str]]]:
    """(contrib host or None for the main session, its pytest arguments), in order."""
    paths = [arg for arg in args if not arg.startswith("-") and _is_path(arg)]
    options = [arg for arg in args if arg not in paths]
    if not paths:
        return [(None, options)] + [
            (host, [*options, f"tests/contrib/{host}"]) for host in CONTRIB_SESSIONS
        ]
    chosen: dict[str | None, list[str]] = {}
    for path in paths:
        for host, session_path in sessions_of(path):
            chosen.setdefault(host, []).append(session_path)
    return [(host, [*options, *chosen[host]]) for host in chosen]


def sessions_of(path: str) -> list[tuple[str | None, str]]:
    """The sessions a path on the command line runs in, with the path each is given.

    A contrib host's folder (or a file in it) is its session's; a folder above the
    contrib folders (``tests``, ``tests/contrib``) is the main session's and each
    contrib session's below it.
    """
    host = contrib_session(path)
    if host is not None:
        return [(host, path)]
    found: list[tuple[str | None, str]] = [(None, path)]
    resolved = (ROOT / path).resolve()
    for host in CONTRIB_SESSIONS:
        folder = ROOT / "tests" / "contrib" / host
        if resolved in folder.parents:
            found.append((host, str(folder.relative_to(ROOT))))
    return found


def _is_path(arg: str) -> bool:
    return (ROOT / arg.split("::", 1)[0]).exists()


def command(host: str | None, args: list[str], *, coverage: bool) -> list[str]:
    runner = (
        ["-m", "coverage", "run", "-p", "-m", "pytest"]
        if coverage
        else ["-m", "pytest"]
    )
    settings = [] if host is None else ["--ds", f"tests.contrib.{host}.settings"]
    return [sys.executable, *runner, *settings, *args]


def main(argv: list[str]) -> int:
    coverage = "--coverage" in argv
    args = [arg for arg in argv if arg != "--coverage"]
    for host, session_args in sessions(args):
        name = "main" if host is None else f"contrib: {host}"
        print(f"\n==== pytest session: {name} ====\n", flush=True)
        status = subprocess.call(
            command(host, session_args, coverage=coverage), cwd=ROOT
        )
        if status != 0:
            print(f"\n==== pytest session {name!r} failed (exit {status}) ====")
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
