"""docs/troubleshooting.md has a section for every error kind an event can carry."""

from __future__ import annotations

import re
from pathlib import Path

from django_openai_capi.models import ErrorKind

PAGE = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"


def test_every_error_kind_has_its_section_in_the_enums_order() -> None:
    kinds = re.findall(r"^### `(\w+)`: ", PAGE.read_text(), re.MULTILINE)
    assert kinds == list(ErrorKind.values)
