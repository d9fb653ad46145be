"""Run the documentation's code as a reader would: every page's snippets, in order.

A page's ```python blocks run top to bottom in one namespace, so a later block may use
what an earlier one defined. A block whose first line names a file of the docs project
(``# shop/models.py``) must agree with that file, and binds its names instead of running.
A block whose first line is ``# settings.py`` is settings:
the upper-case names it binds apply to the rest of the page (``override_settings``),
and the app's system checks must then pass. Conversions a page registers are
unregistered after it. A failure names the page and the block's first line in it, and
the traceback points into the .md file. Each page runs in autocommit, as a reader's
shell does (tests/docs/test_pages.py).

The ```console blocks' ``python manage.py <command> ...`` lines must name a real command
with options its parser takes; ``<placeholder>`` stands for any one value.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib
import io
import linecache
import re
import shlex
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks.registry import registry as check_registry
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError
from django.test import override_settings
from markdown_it import MarkdownIt

from django_openai_capi.tracking.registry import registry

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"
#: The first line of a settings block: ``# settings.py``, ``# mysite/settings.py (add
#: at the end)``.
SETTINGS_MARKER = re.compile(r"#\s*(?:\S*/)?settings\.py\b")
#: The docs project: the guides' app ``shop`` is a folder in it (tests/docs/settings.py).
PROJECT = Path(__file__).resolve().parent / "project"
#: The first line of a block that shows a file: ``# shop/models.py``.
FILE_MARKER = re.compile(r"#\s*(\S+\.py)\b")
#: What stands for a value the reader fills in: ``<id>``, ``<pixel id>``.
PLACEHOLDER = re.compile(r"<[^<>]+>")
#: The value a placeholder is given when a command line is parsed.
PLACEHOLDER_VALUE = "1"
#: Ids of the checks that a page's settings must pass.
CHECK_PREFIX = "django_openai_capi."


class PageFailure(AssertionError):
    """A block of a page failed: the message names the page, line and what went wrong."""


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, its text, and its first line in the page."""

    path: Path
    language: str
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{display(self.path)}:{self.line}"

    @property
    def project_file(self) -> Path | None:
        """The docs project's file the block shows (``# shop/models.py``), if it has it."""
        match = FILE_MARKER.match(self.text.lstrip("\n").split("\n", 1)[0].strip())
        if match is None:
            return None
        path = PROJECT / match.group(1)
        return path if path.is_file() else None

    @property
    def is_settings(self) -> bool:
        first = self.text.lstrip("\n").split("\n", 1)[0]
        return SETTINGS_MARKER.match(first.strip()) is not None


def display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def pages(folder: Path = DOCS) -> list[Path]:
    """Every Markdown page of the documentation, in a stable order."""
    return sorted(path for path in folder.rglob("*.md") if "_build" not in path.parts)


def blocks(path: Path, *languages: str) -> list[Block]:
    """The page's fenced code blocks in *languages*, in order."""
    text = path.read_text()
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        language = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
        if language in languages:
            # token.map[0] is the fence's 0-based line; the code starts on the next.
            found.append(Block(path, language, token.map[0] + 2, token.content))
    return found


# Python blocks.


def compile_block(block: Block) -> CodeType:
    """The block compiled so that errors and tracebacks give lines of the .md file."""
    source = "\n" * (block.line - 1) + block.text
    return compile(source, str(block.path), "exec", dont_inherit=True)


def bound_names(block: Block) -> list[str]:
    """Upper-case names the block binds at its top level: the settings it sets."""
    names: list[str] = []
    for node in ast.parse(block.text).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id.isupper():
                    names.append(name.id)
    return list(dict.fromkeys(names))


def settings_namespace(namespace: dict[str, Any]) -> dict[str, Any]:
    """The page's namespace, with the current settings a settings.py would hold.

    So that ``INSTALLED_APPS += [...]`` extends the project's list, as it would in
    the reader's settings.py.
    """
    names = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    return {**namespace, **copy.deepcopy(names)}


def failure(block: Block, error: BaseException) -> PageFailure:
    frames = traceback.extract_tb(error.__traceback__)
    # From the block's own frame on: the harness's frames say nothing to a reader.
    own = [i for i, frame in enumerate(frames) if frame.filename == str(block.path)]
    shown = frames[own[0] :] if own else frames
    lines = traceback.format_list(shown) + traceback.format_exception_only(error)
    return PageFailure(
        f"{block.where}: the ```python block starting on line {block.line} failed:\n"
        + "".join(lines)
    )


def app_check_problems() -> list[str]:
    """The app's system check errors and warnings in the current settings."""
    return [
        str(message)
        for message in checks.run_checks(include_deployment_checks=False)
        if (message.id or "").startswith(CHECK_PREFIX)
        and message.level >= checks.WARNING
        and not message.is_silenced()
    ]


def run_page(path: Path) -> int:
    """Run every ```python block of *path* in order; the number run.

    Raises :class:`PageFailure` for the first block that fails, or for settings the
    app's checks report.
    """
    namespace: dict[str, Any] = {"__name__": f"docs_page_{path.stem}"}
    saved = registry.snapshot()
    # An app a page installs registers its system checks in ready(), for the whole
    # process: left behind, they would check a later page's settings for an app that
    # page does not install, and whether it passed would depend on the pages' order.
    saved_checks = (
        set(check_registry.registered_checks),
        set(check_registry.deployment_checks),
    )
    # linecache serves tracebacks the page as it is now, not as it was at import.
    linecache.checkcache(str(path))
    count = 0
    fenced = blocks(path, "python", "text", "json")
    try:
        with ExitStack() as stack:
            for index, block in enumerate(fenced):
                if block.language != "python":
                    continue
                count += 1
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    run_block(block, namespace, stack)
                shown = fenced[index + 1] if index + 1 < len(fenced) else None
                check_output(block, printed.getvalue(), shown)
    finally:
        # After the settings are undone: ending an INSTALLED_APPS override runs the
        # apps' ready() again, and a contrib app's registers its conversion there.
        registry.restore(saved)
        check_registry.registered_checks, check_registry.deployment_checks = (
            saved_checks
        )
    return count


def check_output(block: Block, printed: str, shown: Block | None) -> None:
    """What a block prints must be what the page shows right after it.

    A ```text or ```json block that follows a block that prints is its output, as a
    reader will take it; a print the page does not show is not compared.
    """
    if not printed or shown is None or shown.line < block.line:
        return
    if shown.language not in {"text", "json"}:
        return
    if _lines(printed) != _lines(shown.text):
        raise PageFailure(
            f"{block.where}: the block prints what the page does not show on line "
            + f"{shown.line}:\n--- printed\n{printed.rstrip()}\n--- shown\n"
            + shown.text.rstrip()
        )


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").split("\n")]


def statements(source: str) -> list[str]:
    """The top-level statements of *source*, as comparable text (comments left out)."""
    body = ast.parse(source).body
    return [
        ast.dump(node)
        for node in body
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]


def check_project_file(block: Block, path: Path, namespace: dict[str, Any]) -> None:
    """A block showing a file the docs project has must be (part of) that file.

    It is not run: the project's module is already imported, and defining its models
    again would fail. Its names are bound in the page's namespace, as running it would.
    """
    shown = statements(block.text)
    real = statements(path.read_text())
    extra = [statement for statement in shown if statement not in real]
    if extra:
        raise PageFailure(
            f"{block.where}: the block shows {display(path)} but differs from it: "
            + f"{len(extra)} of its statements are not in that file (change the page "
            + "or the file, so that they agree)"
        )
    module = ".".join(path.relative_to(PROJECT).with_suffix("").parts)
    imported = importlib.import_module(module)
    namespace.update(
        {
            name: value
            for name, value in vars(imported).items()
            if not name.startswith("_")
        }
    )


def run_block(block: Block, namespace: dict[str, Any], stack: ExitStack) -> None:
    project_file = block.project_file
    if project_file is not None:
        check_project_file(block, project_file, namespace)
        return
    try:
        code = compile_block(block)
        if not block.is_settings:
            exec(code, namespace)  # noqa: S102  # the documentation's own code
            return
        values = settings_namespace(namespace)
        exec(code, values)  # noqa: S102
    except Exception as error:
        # The message holds the traceback, from the block's line on.
        raise failure(block, error) from None
    changed = {name: values[name] for name in bound_names(block)}
    if "INSTALLED_APPS" in changed:
        # The reader's project lacks the apps a page adds; this one may have them.
        changed["INSTALLED_APPS"] = list(dict.fromkeys(changed["INSTALLED_APPS"]))
    stack.enter_context(override_settings(**changed))
    problems = app_check_problems()
    if problems:
        raise PageFailure(
            f"{block.where}: with the settings of the block starting on line "
            + f"{block.line}, manage.py check reports:\n"
            + "\n".join(problems)
        )


# Console blocks.


@dataclass(frozen=True)
class CommandLine:
    block: Block
    line: int
    #: The shell command as the page shows it.
    text: str
    #: The arguments after ``manage.py``, placeholders given a value.
    args: list[str]

    @property
    def where(self) -> str:
        return f"{display(self.block.path)}:{self.line}"


def manage_commands(block: Block) -> Iterator[CommandLine]:
    """Each ``python manage.py ...`` run in a console block's ``$ `` lines."""
    lines = block.text.split("\n")
    number = 0
    while number < len(lines):
        start = number
        line = lines[number]
        number += 1
        if not line.startswith("$ "):
            continue
        command = line[2:]
        while command.endswith("\\") and number < len(lines):
            command = command[:-1] + " " + lines[number].strip()
            number += 1
        filled = PLACEHOLDER.sub(PLACEHOLDER_VALUE, command)
        for args in manage_py_calls(filled):
            yield CommandLine(block, block.line + start, command.strip(), args)


def manage_py_calls(command: str) -> Iterator[list[str]]:
    """The arguments after ``manage.py`` of each call in a shell command line."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    words = list(lexer)
    call: list[str] = []
    for word in [*words, ";"]:
        if word and set(word) <= set(";&|<>()"):
            yield from manage_py_args(call)
            call = []
        else:
            call.append(word)


def manage_py_args(words: list[str]) -> Iterator[list[str]]:
    for index, word in enumerate(words):
        if word.endswith("manage.py"):
            yield words[index + 1 :]
            return


def check_command(line: CommandLine) -> None:
    """Raise :class:`PageFailure` unless the command exists and its options parse."""
    if not line.args:
        return
    name, *options = line.args
    app = get_commands().get(name)
    if app is None:
        raise PageFailure(f"{line.where}: there is no command {name!r}")
    parser = load_command_class(app, name).create_parser("manage.py", name)
    try:
        parser.parse_args(options)
    except (CommandError, SystemExit) as error:
        raise PageFailure(f"{line.where}: {line.text}: {error}") from error


def check_console_blocks(path: Path) -> int:
    """Check every manage.py line of the page's console blocks; the number checked."""
    count = 0
    for block in blocks(path, "console"):
        for line in manage_commands(block):
            check_command(line)
            count += 1
    return count
