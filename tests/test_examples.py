"""The examples run end to end in their quick mode (so they cannot rot)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", ["quickstart.py"])
def test_example_quick_mode(script):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr
    assert "P@1" in result.stdout and "samples/s" in result.stdout
