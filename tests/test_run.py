"""tests/run.py: which pytest sessions a command line runs, and with which paths."""

from __future__ import annotations

from tests.run import CONTRIB_SESSIONS, command, sessions


def test_without_paths_every_session_runs_with_the_options() -> None:
    assert sessions(["-q"]) == [(None, ["-q"]), ("docs", ["-q", "tests/docs"])] + [
        (host, ["-q", f"tests/contrib/{host}"]) for host in CONTRIB_SESSIONS
    ]


def test_a_contrib_hosts_folder_or_test_runs_in_its_session_only() -> None:
    assert sessions(["tests/contrib/auth", "-x"]) == [
        ("auth", ["-x", "tests/contrib/auth"])
    ]
    node = "tests/contrib/auth/settings.py::test_x"
    assert sessions([node]) == [("auth", [node])]


def test_a_main_session_path_runs_in_the_main_session_only() -> None:
    assert sessions(["tests/test_models.py"]) == [(None, ["tests/test_models.py"])]


def test_a_folder_above_the_contrib_hosts_runs_every_session_below_it() -> None:
    assert sessions(["tests/contrib"]) == [(None, ["tests/contrib"])] + [
        (host, [f"tests/contrib/{host}"]) for host in CONTRIB_SESSIONS
    ]


def test_an_argument_that_is_no_path_is_an_option() -> None:
    assert sessions(["-k", "checks"])[0] == (None, ["-k", "checks"])


def test_the_docs_folder_or_a_test_in_it_runs_in_the_docs_session_only() -> None:
    assert sessions(["tests/docs"]) == [("docs", ["tests/docs"])]
    node = "tests/docs/test_pages.py::test_page"
    assert sessions([node]) == [("docs", [node])]


def test_the_tests_folder_runs_every_session() -> None:
    assert sessions(["tests"]) == [(None, ["tests"]), ("docs", ["tests/docs"])] + [
        (host, [f"tests/contrib/{host}"]) for host in CONTRIB_SESSIONS
    ]


def test_each_session_runs_with_its_own_settings() -> None:
    assert "--ds" not in command(None, [], coverage=False)
    assert command("docs", ["-q"], coverage=False)[-3:] == [
        "--ds",
        "tests.docs.settings",
        "-q",
    ]
    assert command("auth", [], coverage=True)[-2:] == [
        "--ds",
        "tests.contrib.auth.settings",
    ]
