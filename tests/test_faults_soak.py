"""The soak script itself, briefly (the full 200 runs are a benchmark: see bench/soak.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO, clean_env


def test_a_short_soak_writes_every_expected_row_and_counts_every_fault() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "soak.py"), "--runs", "4", "--servers", "12"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    written = next(line for line in lines if line.startswith("rows written: "))
    got, expected = (int(part.split(": ")[1]) for part in written.split(", "))
    assert got == expected > 0
    failures = next(line for line in lines if line.startswith("failures by kind: "))
    served = next(line for line in lines if line.startswith("faults served: "))
    assert failures.split(": ", 1)[1] == served.split(": ", 1)[1].strip()
    assert "FAIL" not in result.stdout
