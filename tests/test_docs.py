"""The README documents every setting and every check id that exists, and no others."""

from __future__ import annotations

import re
from pathlib import Path

from django_openai_capi.conf import DEFAULTS, SETTING_NAMES
from django_openai_capi.delivery.isolation import isolation_budget
from django_openai_capi.dispatch import MAX_BATCHES_PER_WAKE_UP
from django_openai_capi.health import EXIT_CODES, ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CHECKS = (ROOT / "django_openai_capi" / "checks.py").read_text()


def test_every_setting_is_in_the_settings_table_with_its_default():
    rows = dict(
        re.findall(r"^\| `(OPENAI_CAPI_\w+)` \| ([^|]+) \|", README, re.MULTILINE)
    )
    assert list(rows) == list(SETTING_NAMES)
    for name, default in DEFAULTS.items():
        if isinstance(default, bool | int | float | str):
            assert repr(default).replace("'", '"') in rows[name], name


def test_every_check_id_is_documented():
    ids = set(re.findall(r'id="django_openai_capi\.([EW]\d{3})"', CHECKS))
    documented = set()
    for cell in re.findall(r"^\| ((?:`[EW]\d{3}`[ ,/]*)+) \|", README, re.MULTILINE):
        documented.update(re.findall(r"[EW]\d{3}", cell))
    assert ids and documented == ids


def test_the_inline_modes_worst_wait_is_the_one_the_code_allows():
    bullet = README[README.index('- `"inline"` sends') :].split("\n- ")[0]
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


def test_the_exit_status_table_lists_every_code_the_commands_exit_with():
    monitoring = README[README.index("## Monitoring") :]
    section = monitoring[monitoring.index("### Exit status") :]
    codes = re.findall(r"^\| (\d+) \| ", section, re.MULTILINE)
    assert [int(code) for code in codes] == [int(code) for code in ExitCode]
    for problem in EXIT_CODES:
        assert f"- `{problem.value}`: " in monitoring, problem
