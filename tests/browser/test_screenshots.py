"""``python -m example_project.screenshots`` makes every screenshot the docs show.

Run as a user runs it, into a scratch directory: the demo on a database and ports of
its own, the fake's faults, the admin in Chromium. Each image the docs reference must
come out whole and of the size the script says (tests/test_docs_screenshots.py checks
the committed copies against the same list without a browser).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from example_project.screenshots import SHOTS, png_size
from tests.browser.test_chromium import chromium  # noqa: F401 - the shared fixture
from tests.test_docs_screenshots import ROOT, referenced

pytestmark = [pytest.mark.browser]

#: The demo's steps, runserver and six pages: well under a minute on a quiet machine.
TIMEOUT = 300


def test_the_script_makes_every_screenshot_the_docs_show(
    chromium: Path,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    out = tmp_path / "shots"
    run = subprocess.run(
        [sys.executable, "-m", "example_project.screenshots", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-4000:]
    sizes = {shot.name: (shot.width, shot.height) for shot in SHOTS}
    made = {path.name: path for path in out.iterdir()}
    assert set(made) == set(sizes)
    assert set(referenced()) <= set(made)
    for name, path in made.items():
        assert png_size(path.read_bytes()) == sizes[name], name
    # Printed one per line at the end, after the demo's own output.
    assert run.stdout.splitlines()[-len(SHOTS) :] == [
        str(out / shot.name) for shot in SHOTS
    ]
