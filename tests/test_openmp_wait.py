"""Importing the package makes the engine's OpenMP threads wait passively,
keeps a policy the user chose, and leaves the environment unchanged."""

import os
import subprocess
import sys

import pytest

SCRIPT = "import os, sklearn_slide; print(os.environ.get('OMP_WAIT_POLICY'))"


def _import_in_child(tmp_path, policy):
    """(OMP_WAIT_POLICY after the import, the spin count of each OpenMP runtime loaded)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # GNU OpenMP prints its settings when it loads; its spin count is 0 only when
    # the threads wait passively (the default spins 300,000 times first).
    env["OMP_DISPLAY_ENV"] = "VERBOSE"
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    spins = [line.split("=", 1)[1].strip().strip("'") for line in done.stderr.splitlines()
             if line.strip().startswith("GOMP_SPINCOUNT =")]
    if not spins:
        pytest.skip("the OpenMP runtime does not display its settings (not GNU OpenMP)")
    return done.stdout.strip(), spins


def test_engine_waits_passively_and_environment_is_restored(tmp_path):
    after_import, spins = _import_in_child(tmp_path, None)
    assert after_import == "None"
    # The engine's runtime loads last (scikit-learn's own copy, if any, first).
    assert spins[-1] == "0"


def test_a_policy_the_user_set_is_kept(tmp_path):
    after_import, spins = _import_in_child(tmp_path, "ACTIVE")
    assert after_import == "ACTIVE"
    assert "0" not in spins
