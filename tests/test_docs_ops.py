"""The operations guides state what the code does: the inline worst case, the exit codes."""

from __future__ import annotations

import re
from pathlib import Path

from django_openai_capi.conf import DEFAULTS
from django_openai_capi.delivery.isolation import isolation_budget
from django_openai_capi.dispatch import MAX_BATCHES_PER_WAKE_UP
from django_openai_capi.health import EXIT_CODES, ExitCode
from django_openai_capi.models import ErrorKind

DOCS = Path(__file__).resolve().parent.parent / "docs"
SENDING = (DOCS / "sending.md").read_text()
TROUBLESHOOTING = (DOCS / "troubleshooting.md").read_text()


def test_the_inline_modes_worst_wait_is_the_one_the_code_allows():
    bullet = SENDING[SENDING.index('- `"inline"` sends') :].split("\n- ")[0]
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
    monitoring = TROUBLESHOOTING[TROUBLESHOOTING.index("## Monitoring") :]
    section = monitoring[monitoring.index("### Exit status") :]
    section = section[: section.index("\n### ", 1)]
    codes = re.findall(r"^\| (\d+) \| ", section, re.MULTILINE)
    assert [int(code) for code in codes] == [int(code) for code in ExitCode]
    for problem in EXIT_CODES:
        assert f"- `{problem.value}`: " in monitoring, problem


def test_every_error_kind_has_its_section():
    kinds = re.findall(r"^### `(\w+)`: ", TROUBLESHOOTING, re.MULTILINE)
    assert kinds == list(ErrorKind.values)
