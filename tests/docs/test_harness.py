"""The snippet harness itself (tests/docs/snippets.py), on pages made to pass or fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.checks.registry import registry as check_registry

from django_openai_capi.tracking.registry import registry
from tests.docs.snippets import (
    Block,
    PageFailure,
    blocks,
    bound_names,
    check_console_blocks,
    manage_py_calls,
    run_page,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.django_db(transaction=True)
def test_a_page_runs_in_one_namespace_with_its_settings_and_is_undone_after() -> None:
    order_model = apps.get_model("shop", "Order")
    before = registry.snapshot()

    assert run_page(FIXTURES / "works.md") == 4

    assert registry.get(order_model) is None
    assert registry.snapshot() == before
    assert settings.OPENAI_CAPI_PIXEL_ID == "test-pixel"
    assert "django.contrib.humanize" not in settings.INSTALLED_APPS
    assert not hasattr(settings, "OPENAI_CAPI_VALIDATE_ONLY")


@pytest.mark.django_db(transaction=True)
def test_the_checks_an_app_a_page_installs_registers_are_gone_after_it() -> None:
    before = set(check_registry.registered_checks)

    assert run_page(FIXTURES / "installs_app.md") == 2

    assert set(check_registry.registered_checks) == before


@pytest.mark.django_db
def test_a_failing_block_is_reported_with_its_page_line_and_traceback() -> None:
    with pytest.raises(PageFailure) as failure:
        run_page(FIXTURES / "fails.md")

    message = str(failure.value)
    assert message.startswith(
        "tests/docs/fixtures/fails.md:10: the ```python block starting on line 10 "
    )
    # The traceback's line is the .md file's, with its text.
    assert 'fails.md", line 11' in message
    assert "missing = numbers[10]" in message
    assert message.rstrip().endswith("IndexError: list index out of range")


@pytest.mark.django_db
def test_settings_the_checks_refuse_fail_the_page_with_the_check_id() -> None:
    with pytest.raises(PageFailure, match=r"django_openai_capi\.E010") as failure:
        run_page(FIXTURES / "bad_setting.md")

    assert str(failure.value).startswith("tests/docs/fixtures/bad_setting.md:4: ")
    assert settings.OPENAI_CAPI_BATCH_SIZE == 1000


@pytest.mark.django_db
def test_a_block_showing_the_example_apps_models_binds_them_without_running() -> None:
    assert run_page(FIXTURES / "models.md") == 2


@pytest.mark.django_db
def test_a_block_showing_models_the_example_app_does_not_have_fails() -> None:
    with pytest.raises(PageFailure) as failure:
        run_page(FIXTURES / "models_differ.md")

    assert str(failure.value).startswith(
        "tests/docs/fixtures/models_differ.md:4: the block shows "
        + "tests/docs/project/shop/models.py but differs from it: 1 of its statements"
    )


def test_manage_py_lines_parse_with_placeholders_continuations_and_shell() -> None:
    assert check_console_blocks(FIXTURES / "works.md") == 4


def test_an_option_the_command_does_not_take_fails_with_its_line() -> None:
    with pytest.raises(
        PageFailure,
        match=r"^tests/docs/fixtures/bad_command\.md:4: python manage\.py "
        + r"openai_capi_send --forever: Error: unrecognized arguments: --forever",
    ):
        check_console_blocks(FIXTURES / "bad_command.md")


def test_a_command_that_does_not_exist_fails(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```console\n$ python manage.py openai_capi_sned\n```\n")
    with pytest.raises(PageFailure, match="there is no command 'openai_capi_sned'"):
        check_console_blocks(page)


def test_shell_around_a_call_is_not_taken_for_its_arguments() -> None:
    assert list(manage_py_calls("FOO=1 python manage.py migrate --noinput")) == [
        ["migrate", "--noinput"]
    ]
    assert list(
        manage_py_calls("python3 manage.py check; ./manage.py migrate 2>&1 | tee log")
    ) == [["check"], ["migrate", "2"]]
    assert list(manage_py_calls("pip install django-openai-capi")) == []


def test_only_the_blocks_languages_asked_for_are_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n```python\na = 1\n```\n\n```text\nb = 2\n```\n\n"
        + "````markdown\n```python\nc = 3\n```\n````\n"
    )
    assert blocks(page, "python") == [Block(page, "python", 4, "a = 1\n")]


def test_settings_are_the_upper_case_names_a_block_binds() -> None:
    block = Block(
        Path("settings.md"),
        "python",
        1,
        "# settings.py\nimport os\nDEBUG = True\nINSTALLED_APPS += ['x']\n"
        + "A: int = 1\nlower = 2\nX, Y = 1, 2\nprint(SECRET_KEY)\n",
    )
    assert block.is_settings
    for first in [
        "# mysite/settings.py (add at the end)",
        "#settings.py",
        "# settings.py",
    ]:
        assert Block(Path("a.md"), "python", 1, first + "\nX = 1\n").is_settings
    for first in ["# shop/conversions.py", "# not settings.py", "X = 1"]:
        assert not Block(Path("a.md"), "python", 1, first + "\nX = 1\n").is_settings
    assert bound_names(block) == ["DEBUG", "INSTALLED_APPS", "A", "X", "Y"]


@pytest.mark.django_db
def test_what_a_block_prints_must_be_the_output_the_page_shows() -> None:
    with pytest.raises(PageFailure) as failure:
        run_page(FIXTURES / "output.md")

    message = str(failure.value)
    assert message.startswith(
        "tests/docs/fixtures/output.md:22: the block prints what the page does not "
        "show on line 26:"
    )
    assert "--- printed\n['a', 'b']\n--- shown\n['b', 'a']" in message
