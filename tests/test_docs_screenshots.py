"""The docs' screenshots: each one the docs show is made by the script and committed.

``python -m example_project.screenshots`` makes them (tests/browser/test_screenshots.py
runs it); here, without a browser: the names the docs use, the script's list and the
files in docs/_static/screenshots are one and the same set, each file the size the
script makes it. A screenshot renamed, dropped or resized in one place fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from example_project.screenshots import DEFAULT_OUT, SHOTS, Shot, png_size

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = re.compile(r"_static/screenshots/([^)\s\"']+)")


def referenced() -> dict[str, list[str]]:
    """Each image name the docs' pages use, with the pages that use it."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for name in REFERENCE.findall(page.read_text()):
            found.setdefault(name, []).append(str(page.relative_to(DOCS)))
    return found


def test_the_script_writes_into_the_docs_static_screenshots() -> None:
    assert DEFAULT_OUT == DOCS / "_static" / "screenshots"


def test_every_image_the_docs_show_is_one_the_script_makes() -> None:
    made = {shot.name for shot in SHOTS}
    unknown = {name: pages for name, pages in referenced().items() if name not in made}
    assert not unknown, f"not made by example_project/screenshots.py: {unknown}"


def test_every_image_the_script_makes_is_shown_in_the_docs() -> None:
    unused = {shot.name for shot in SHOTS} - set(referenced())
    assert not unused, f"made but shown on no page: {sorted(unused)}"


def test_the_committed_images_are_the_scripts_list() -> None:
    committed = {path.name for path in DEFAULT_OUT.iterdir()}
    assert committed == {shot.name for shot in SHOTS}


@pytest.mark.parametrize("shot", SHOTS, ids=lambda shot: shot.name)
def test_each_committed_image_is_a_png_of_the_size_the_script_makes(
    shot: Shot,
) -> None:
    data = (DEFAULT_OUT / shot.name).read_bytes()
    assert png_size(data) == (shot.width, shot.height)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"GIF89a" + b"\x00" * 40, "another format"),
        (b"", "empty"),
    ],
)
def test_png_size_refuses_what_is_not_a_png(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match="not a PNG image"):
        png_size(data)


def test_png_size_refuses_a_png_cut_short() -> None:
    whole = (DEFAULT_OUT / SHOTS[0].name).read_bytes()
    assert png_size(whole) == (SHOTS[0].width, SHOTS[0].height)
    with pytest.raises(ValueError, match="not all of one"):
        png_size(whole[: len(whole) // 2])
