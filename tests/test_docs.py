"""What the documentation's generated references and guides say matches the code.

The settings and checks references are made from ``conf.DESCRIPTIONS`` and the
``CHECK_IDS`` catalogues (docs/_ext/capi_reference.py): these tests keep the catalogues
complete. The guides' numbers that come from the code are checked against it here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from django_openai_capi.checks import CHECK_MODULES, CheckId, all_check_ids
from django_openai_capi.conf import DEFAULTS, DESCRIPTIONS, DJANGO_SETTINGS
from django_openai_capi.delivery.isolation import isolation_budget
from django_openai_capi.dispatch import MAX_BATCHES_PER_WAKE_UP
from django_openai_capi.health import EXIT_CODES, ExitCode

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_openai_capi"
DOCS = ROOT / "docs"

CHECK_ID = re.compile(r'"(django_openai_capi\.(?:[a-z_]+\.)?[EW]\d{3})"')


def test_every_setting_has_a_description() -> None:
    assert list(DESCRIPTIONS) == list(DEFAULTS)
    assert all(text.strip() for text in DESCRIPTIONS.values())
    assert list(DJANGO_SETTINGS) == ["USE_TZ"]


def ids_used(source: str) -> set[str]:
    """The check ids a module's code uses, leaving out its CHECK_IDS catalogue."""
    if "CHECK_IDS: Mapping" in source:
        before, catalogue = source.split("CHECK_IDS: Mapping", 1)
        source = before + catalogue[catalogue.index("\n)\n") :]
    return set(CHECK_ID.findall(source))


def test_every_check_id_used_is_in_its_modules_catalogue_and_no_other() -> None:
    """An id in an Error/Warning is catalogued beside it, and the catalogue has no more."""
    reporting = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        used = ids_used(path.read_text())
        if not used:
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        reporting.add(module)
        assert module in CHECK_MODULES, f"{module} reports {sorted(used)}"
        catalogue = importlib.import_module(module).CHECK_IDS
        assert used == set(catalogue), module
    assert reporting == set(CHECK_MODULES)


def test_all_check_ids_are_every_catalogue_in_order() -> None:
    catalogue = all_check_ids()
    assert list(catalogue)[:2] == ["django_openai_capi.E001", "django_openai_capi.E002"]
    assert list(catalogue)[-1] == "django_openai_capi.health_check.W001"
    assert len(catalogue) == sum(
        len(importlib.import_module(module).CHECK_IDS) for module in CHECK_MODULES
    )
    for check_id, entry in catalogue.items():
        assert isinstance(entry, CheckId), check_id
        assert entry.problem and entry.fix, check_id


def test_the_inline_modes_worst_wait_is_the_one_the_code_allows() -> None:
    """docs/sending.md: the worst wait of a save under ``"inline"``."""
    page = (DOCS / "sending.md").read_text()
    bullet = page[page.index('- `"inline"` sends') :].split("\n- ")[0]
    text = " ".join(bullet.split())
    batch_size, timeout = (
        DEFAULTS["OPENAI_CAPI_BATCH_SIZE"],
        DEFAULTS["OPENAI_CAPI_TIMEOUT"],
    )
    assert isinstance(batch_size, int) and isinstance(timeout, float)
    batches = MAX_BATCHES_PER_WAKE_UP
    requests = isolation_budget(batch_size)
    minutes = batches * requests * timeout / 60

    assert f"up to {batches} batches" in text
    assert f"up to {requests} requests" in text
    assert f"{batches} × {requests} timeouts: {minutes:g} minutes" in text


def test_the_exit_status_table_lists_every_code_the_commands_exit_with() -> None:
    """docs/troubleshooting.md: every exit status, and every problem that makes one."""
    page = (DOCS / "troubleshooting.md").read_text()
    section = page[page.index("### Exit status") :]
    codes = re.findall(r"^\| (\d+) \| ", section, re.MULTILINE)
    assert [int(code) for code in codes] == [int(code) for code in ExitCode]
    for problem in EXIT_CODES:
        assert f"- `{problem.value}`: " in page, problem
