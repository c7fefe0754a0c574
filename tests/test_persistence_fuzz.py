"""The file fuzz suite (``tests/fuzz_files.py``), run in a subprocess.

A file that crashes the process (a segmentation fault in a fused optimiser,
a heap corruption) then fails this test with the fuzz run's output, instead
of ending the whole test run.
"""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def test_fuzzed_files_are_rejected_or_harmless_and_never_crash(tmp_path):
    environment = {
        **os.environ,
        "SKAE_FUZZ_EXAMPLES": os.environ.get("SKAE_FUZZ_EXAMPLES", "25"),
        # One thread: the models are tiny, and the suite shares the machine.
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(TESTS / "fuzz_files.py"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--basetemp",
            str(tmp_path / "fuzz"),
        ],
        cwd=TESTS.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = run.stdout[-6000:] + run.stderr[-3000:]
    assert run.returncode == 0, f"fuzz run ended with {run.returncode} (<0: a signal):\n{output}"
    assert " passed" in run.stdout and "failed" not in run.stdout, output
