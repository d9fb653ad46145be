"""The documentation works as written: its code runs, its commands parse, it builds.

Each page is one test (its id is the page's path): its ```python blocks run in order
in one namespace (tests/docs/snippets.py), and each ``python manage.py`` line of its
```console blocks names a real command with options that parse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.snippets import DOCS, ROOT, PageFailure, check_console_blocks, pages
from tests.docs.snippets import run_page as run

# The README is the docs' front door, and its quickstart runs like theirs.
PAGES = [*pages(), ROOT / "README.md"]


def test_there_are_pages() -> None:
    assert DOCS / "index.md" in PAGES
    assert DOCS / "reference" / "settings.md" in PAGES


# Transactional, as a reader's shell is: each save commits, so on_commit work (the
# "inline" and "task" dispatch modes) happens where the page says it does. The tables
# are emptied after each page.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@pytest.mark.parametrize(
    "page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES]
)
def test_page(page: Path) -> None:
    problem = None
    try:
        run(page)
        check_console_blocks(page)
    except PageFailure as failure:
        problem = str(failure)
    if problem is not None:
        # Outside the except clause: the message is the whole story.
        pytest.fail(problem, pytrace=False)


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    """``make docs``: warnings are errors, and a page in no toctree is a warning."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
        + ["docs", str(tmp_path / "html")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
