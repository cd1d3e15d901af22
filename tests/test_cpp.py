"""The engine's C++ unit tests (cpp/tests/: active set, hash tables, row groups,
top-k, Adam), built with CMake from the source tree and run.

The build goes to build/cpp-tests in the checkout (incremental on reruns). CMake
and a C++ compiler are needed: the [test] extra installs CMake and Ninja, the
compiler is the one that builds the package.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "cpp" / "tests"
BUILD = ROOT / "build" / "cpp-tests"


@pytest.fixture(scope="module")
def test_binary():
    if not SOURCE.is_dir():
        pytest.skip("no cpp/tests in this tree (an installed package without its sources)")
    cmake = shutil.which("cmake")
    assert cmake, "cmake is needed to build the C++ tests (pip install '.[test]')"
    configure = [cmake, "-S", str(SOURCE), "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release"]
    if shutil.which("ninja") and not (BUILD / "CMakeCache.txt").exists():
        configure += ["-G", "Ninja"]
    for command in (configure, [cmake, "--build", str(BUILD), "--parallel", "2"]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return BUILD / "slide_cpp_tests"


def test_cpp_unit_tests_pass(test_binary):
    names = subprocess.run([str(test_binary), "--list"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert {"topk_equals_a_full_sort_in_any_push_order", "row_groups_keep_sample_order_within_a_row",
            "adam_lazy_rows_decay_their_moments_over_skipped_steps",
            "active_set_pads_with_distinct_random_negatives",
            "hash_tables_put_every_neuron_in_its_bucket"} <= set(names)
    result = subprocess.run([str(test_binary)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
