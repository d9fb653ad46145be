"""The reference tables the docs extension makes (docs/_ext/capi_reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from django_openai_capi.api import spec
from django_openai_capi.conf import SETTING_NAMES
from tests.docs.snippets import DOCS

if str(DOCS / "_ext") not in sys.path:
    sys.path.insert(0, str(DOCS / "_ext"))

import capi_reference


def test_defaults_are_shown_as_python_writes_them() -> None:
    shown = [capi_reference.format_default(value) for value in (None, "task", 1000)]
    assert shown == ["`None`", '`"task"`', "`1000`"]
    assert capi_reference.format_default(()) == "`()`"
    assert capi_reference.format_default({}) == "`{}`"


def test_every_setting_is_a_row_with_its_anchor_in_order() -> None:
    header, rows, anchors = capi_reference.setting_rows()
    assert header == ["Setting", "Default", "Meaning"]
    assert [row[0] for row in rows] == [f"`{name}`" for name in SETTING_NAMES]
    assert (
        anchors[SETTING_NAMES.index("OPENAI_CAPI_DISPATCH")] == "openai_capi_dispatch"
    )
    dispatch = rows[SETTING_NAMES.index("OPENAI_CAPI_DISPATCH")]
    assert dispatch[1] == '`"task"`'


def test_every_event_type_is_a_row_with_its_data_shape() -> None:
    _, rows, anchors = capi_reference.event_type_rows()
    assert sorted(anchors) == sorted(spec.EVENT_DATA_TYPES)
    order = rows[anchors.index("order_created")]
    assert order[:3] == ["`order_created`", "`EventType.ORDER_CREATED`", "`contents`"]
    assert order[3] == "`amount`, `contents`, `currency`"
    assert rows[anchors.index("app_opened")][4] == "yes"
    assert rows[anchors.index("order_created")][4] == ""
    assert "any other key" in rows[anchors.index("custom")][3]


def test_each_event_type_says_when_to_use_it() -> None:
    header, rows, anchors = capi_reference.event_type_rows()
    assert header[-1] == "When"
    order = rows[anchors.index("order_created")]
    assert order[-1] == spec.EVENT_TYPE_DESCRIPTIONS[spec.EventType.ORDER_CREATED]
    assert all(row[-1] for row in rows)


def test_content_items_fields_are_listed() -> None:
    assert "`quantity`" in capi_reference.content_fields()


def test_every_check_is_a_row_with_its_level() -> None:
    _, rows, anchors = capi_reference.check_rows()
    assert anchors[0] == "django_openai_capi.E001"
    assert rows[anchors.index("django_openai_capi.W001")][1] == "Warning"
    assert rows[anchors.index("django_openai_capi.oscar.E003")][1] == "Error"


def test_each_command_shows_its_usage_and_own_options_only() -> None:
    names = capi_reference.command_names()
    assert "openai_capi_send" in names and "openai_capi_verify" in names
    lines = capi_reference.command_lines("openai_capi_send")
    usage = next(line for line in lines if line.startswith("usage: "))
    assert usage.startswith("usage: manage.py openai_capi_send [--loop]")
    assert "--settings" not in usage and "[-v " not in usage and "[-h]" not in usage
    options = "\n".join(line for line in lines if line.startswith("| `"))
    assert "`--loop`" in options
    assert "--settings" not in options and "--verbosity" not in options


def test_a_table_cell_keeps_to_one_line_and_escapes_pipes() -> None:
    assert capi_reference.cell("a |\n b") == "a \\| b"
    assert capi_reference.code("x`y") == "`` x`y ``"


def test_the_reference_pages_use_the_directives() -> None:
    pages = {
        "settings.md": "capi-settings",
        "checks.md": "capi-checks",
        "commands.md": "capi-commands",
    }
    for page, directive in pages.items():
        text = (DOCS / "reference" / page).read_text()
        assert "```{" + directive + "}" in text, page
    assert Path(capi_reference.__file__).parent == DOCS / "_ext"
