"""Reference tables generated from the code that defines them, so they cannot drift.

Directives (MyST: ```` ```{capi-settings} ```` and so on):

* ``capi-event-types``: the API's event types (``spec.EventType``), their data shape and
  the fields it allows (``spec.DATA_FIELDS``), and which are app-only.
* ``capi-settings``: every ``OPENAI_CAPI_*`` setting in ``conf.DEFAULTS`` order, with its
  default and its meaning (``conf.DESCRIPTIONS``); anchor: the name in lower case.
* ``capi-checks``: every system check id with what is wrong and the fix (the
  ``CHECK_IDS`` catalogue of each module in ``checks.CHECK_MODULES``); anchor: the id
  as printed.
* ``capi-commands``: each ``openai_capi_*`` management command's help and options, read
  from its real argparse parser; anchor: the command's name.

Each directive writes Markdown and lets MyST parse it, then gives each row (or
section) an id and a label, so that ``[](reference/settings.md#openai_capi_dispatch)``
resolves.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.domains.std import StandardDomain
from sphinx.environment import BuildEnvironment
from sphinx.util.docutils import SphinxDirective

#: Options every management command has (``BaseCommand``): listed once in the page's
#: intro, not under each command.
COMMON_OPTIONS = frozenset(
    {
        "-h",
        "--version",
        "-v",
        "--settings",
        "--pythonpath",
        "--traceback",
        "--no-color",
        "--force-color",
        "--skip-checks",
    }
)


def cell(text: str) -> str:
    """*text* made safe for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    """*text* as inline code, with enough backticks for what it holds."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def format_default(value: object) -> str:
    """A default as the settings table shows it: ``None``, ``"task"``, ``1000``, ``()``."""
    if isinstance(value, Mapping):
        return code(repr(dict(value)))
    if isinstance(value, str):
        return code('"' + value + '"')
    return code(repr(value))


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(cell(text) for text in row) + " |" for row in rows]
    return lines


# Event types.


def event_types() -> list[tuple[str, str, str, str]]:
    """(API name, member name, data shape, description) of each event type."""
    from django_openai_capi.api import spec

    return [
        (
            member.value,
            member.name,
            spec.EVENT_DATA_TYPES[member],
            spec.EVENT_TYPE_DESCRIPTIONS[member],
        )
        for member in spec.EventType
    ]


def event_type_rows() -> tuple[list[str], list[list[str]], list[str]]:
    from django_openai_capi.api import spec

    types = event_types()
    header = [
        "Event type",
        "`EventType`",
        "Data shape",
        "`data` fields",
        "App only",
        "When",
    ]
    rows: list[list[str]] = []
    anchors: list[str] = []
    for name, member, data_type, description in types:
        fields = ", ".join(code(field) for field in sorted(spec.DATA_FIELDS[data_type]))
        if data_type == "custom":
            fields += ", any other key"
        app_only = "yes" if name in spec.MOBILE_APP_EVENT_TYPES else ""
        row = [
            code(name),
            code(f"EventType.{member}"),
            code(data_type),
            fields,
            app_only,
        ]
        rows.append([*row, description])
        anchors.append(name)
    return header, rows, anchors


def content_fields() -> str:
    from django_openai_capi.api import spec

    fields = ", ".join(code(field) for field in sorted(spec.CONTENT_FIELDS))
    return f"Each item of `contents` may have: {fields}."


# Settings.


def setting_rows() -> tuple[list[str], list[list[str]], list[str]]:
    from django_openai_capi.conf import DEFAULTS, DESCRIPTIONS, SETTING_NAMES

    rows = [
        [code(name), format_default(DEFAULTS[name]), DESCRIPTIONS[name]]
        for name in SETTING_NAMES
    ]
    return ["Setting", "Default", "Meaning"], rows, [n.lower() for n in SETTING_NAMES]


def django_setting_rows() -> list[list[str]]:
    from django_openai_capi.conf import DJANGO_SETTINGS

    return [[code(name), text] for name, text in DJANGO_SETTINGS.items()]


# Checks.


def check_rows() -> tuple[list[str], list[list[str]], list[str]]:
    rows: list[list[str]] = []
    anchors: list[str] = []
    from django_openai_capi.checks import all_check_ids

    for check_id, entry in all_check_ids().items():
        level = "Error" if check_id.rsplit(".", 1)[1].startswith("E") else "Warning"
        rows.append([code(check_id), level, entry.problem, entry.fix])
        anchors.append(check_id)
    return ["Id", "Level", "What is wrong", "Fix"], rows, anchors


# Commands.


def command_names() -> list[str]:
    from django.core.management import get_commands

    return sorted(
        name
        for name, app in get_commands().items()
        if app == "django_openai_capi" and name.startswith("openai_capi_")
    )


def command_parser(name: str) -> argparse.ArgumentParser:
    from django.core.management import load_command_class

    command = load_command_class("django_openai_capi", name)
    return command.create_parser("manage.py", name)


def own_actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if COMMON_OPTIONS.intersection(action.option_strings):
            continue
        yield action


def action_label(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar if isinstance(action.metavar, str) else action.dest
    label = ", ".join(action.option_strings)
    if action.nargs != 0:
        metavar = action.metavar or action.dest.upper()
        label += f" {metavar}" if isinstance(metavar, str) else ""
    return label


def action_help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%(default)s", str(action.default))
    text = text.replace("%%", "%")
    if action.choices is not None:
        choices = ", ".join(code(str(choice)) for choice in action.choices)
        text += f" One of {choices}."
    return text


def command_lines(name: str) -> list[str]:
    parser = command_parser(name)
    usage = " ".join(parser.format_usage().split())
    for option in COMMON_OPTIONS:
        # "[--settings SETTINGS]", "[-v {0,1,2,3}]": said once, in the page's intro.
        usage = re.sub(rf" \[{re.escape(option)}(?: [^\]]*)?\]", "", usage)
    lines = [(parser.description or "").strip(), "", "```text", usage, "```", ""]
    rows = [
        [code(action_label(action)), action_help(action)]
        for action in own_actions(parser)
    ]
    if rows:
        lines += table(["Argument", "Meaning"], rows) + [""]
    else:
        lines += ["No options besides Django's common ones.", ""]
    return lines


def standard_domain(env: BuildEnvironment) -> StandardDomain:
    domain = env.get_domain("std")
    assert isinstance(domain, StandardDomain)
    return domain


class TableDirective(SphinxDirective):
    """Renders a Markdown table and gives each body row an id and a label."""

    has_content = False

    def sources(self) -> Iterable[str]:
        """The modules the table is made from: a change to one rebuilds the page."""
        return ()

    def note_sources(self, modules: Iterable[str]) -> None:
        for module in [__name__, *modules]:
            path = getattr(
                sys.modules.get(module) or importlib.import_module(module),
                "__file__",
                None,
            )
            if path:
                self.env.note_dependency(path)

    def rows(self) -> tuple[list[str], list[list[str]], list[str]]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        header, rows, anchors = self.rows()
        return self.render(table(header, rows), anchors)

    def render(self, lines: list[str], anchors: Sequence[str]) -> list[nodes.Node]:
        self.note_sources(self.sources())
        container = nodes.container()
        self.state.nested_parse(StringList(lines, self.env.docname), 0, container)
        body = next(iter(container.findall(nodes.tbody)))
        rows = [row for row in body.children if isinstance(row, nodes.row)]
        assert len(rows) == len(anchors), (len(rows), len(anchors))
        std = standard_domain(self.env)
        for row, anchor in zip(rows, anchors, strict=True):
            row["ids"].append(anchor)
            std.note_hyperlink_target(anchor, self.env.docname, anchor, anchor)
        return list(container.children)


class EventTypesDirective(TableDirective):
    def sources(self) -> Iterable[str]:
        return ["django_openai_capi.api.spec"]

    def run(self) -> list[nodes.Node]:
        header, rows, anchors = event_type_rows()
        lines = ["", content_fields(), "", "App-only events are sent with "]
        lines[-1] += "`action_source` `mobile_app`, from the server only."
        return self.render(table(header, rows) + lines, anchors)


class SettingsDirective(TableDirective):
    def sources(self) -> Iterable[str]:
        return ["django_openai_capi.conf"]

    def run(self) -> list[nodes.Node]:
        header, rows, anchors = setting_rows()
        result = self.render(table(header, rows), anchors)
        container = nodes.container()
        lines = ["Django's own settings the app needs:", ""]
        lines += table(["Setting", "Requirement"], django_setting_rows())
        self.state.nested_parse(StringList(lines, self.env.docname), 0, container)
        return result + list(container.children)


class ChecksDirective(TableDirective):
    def sources(self) -> Iterable[str]:
        from django_openai_capi.checks import CHECK_MODULES

        return CHECK_MODULES

    def rows(self) -> tuple[list[str], list[list[str]], list[str]]:
        return check_rows()


class CommandsDirective(TableDirective):
    """A section per command: its description, usage and its own options."""

    def run(self) -> list[nodes.Node]:
        std = standard_domain(self.env)
        result: list[nodes.Node] = []
        self.note_sources(
            f"django_openai_capi.management.commands.{name}" for name in command_names()
        )
        for name in command_names():
            container = nodes.container()
            lines = [f"`{name}`", "", *command_lines(name)]
            self.state.nested_parse(StringList(lines, self.env.docname), 0, container)
            title = container.children[0]
            assert isinstance(title, nodes.paragraph)
            rubric = nodes.rubric("", "", *title.children, ids=[name])
            std.note_hyperlink_target(name, self.env.docname, name, name)
            result += [rubric, *container.children[1:]]
        return result


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("capi-event-types", EventTypesDirective)
    app.add_directive("capi-settings", SettingsDirective)
    app.add_directive("capi-checks", ChecksDirective)
    app.add_directive("capi-commands", CommandsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
