"""tests/processes.py: a worker a test started does not outlive the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT

PARENT = """
import subprocess, sys, time
from tests.processes import die_with_parent
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(60)"], preexec_fn=die_with_parent
)
print(child.pid, flush=True)
time.sleep(60)
"""


def running(pid: int) -> bool:
    """Whether *pid* runs: not gone, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.skipif(
    sys.platform != "linux", reason="prctl(PR_SET_PDEATHSIG) is Linux's"
)
def test_a_worker_is_killed_when_the_test_process_is() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    assert running(worker)

    parent.send_signal(signal.SIGKILL)  # as when pytest itself is killed
    parent.wait(timeout=10)

    deadline = time.monotonic() + 10
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(worker)
