#!/usr/bin/env bash
# Runs tests against an AddressSanitizer + UndefinedBehaviorSanitizer build of
# the engine, with the index-bound assertions of SLIDE_DEBUG_CHECKS compiled in.
#
#   tools/run_sanitized_tests.sh                    # representative subset (~10 min on 2 cores)
#   tools/run_sanitized_tests.sh tests/ -x          # any pytest arguments: the whole suite
#   SLIDE_SANITIZE_DIR=/tmp/asan tools/run_sanitized_tests.sh   # reuse a build directory
#
# The extension is built in a temporary directory (never installed) and the
# package is copied next to it, so an editable install of the project is left
# alone; a sitecustomize shim drops the editable install's import hook so that
# the copy is what the tests import (checked before they run).
#
# Sanitizer reports go to $SLIDE_SANITIZE_DIR/logs and are printed at the end.
# Exit status: pytest's, or 3 when pytest passed but a sanitizer reported
# anything. Leak detection is off: CPython's own allocations are noise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${SLIDE_SANITIZE_DIR:-$(mktemp -d -t slide-sanitize-XXXXXX)}
BUILD=$WORK/build
PKG=$WORK/pkg
SHIM=$WORK/shim
LOGS=$WORK/logs
PYTHON=${PYTHON:-python}
CXX=${CXX:-g++}

# Default: the tests that drive the engine hardest. Of tests/test_interrupt.py
# only the partial_fit cases run: the others bound the wall-clock time until
# the process has exited, and tearing down 2M-row arrays under ASan exceeds it.
if [ "$#" -eq 0 ]; then
  set -- tests/test_hash_families.py tests/test_kernels.py tests/test_engine_reference.py \
    tests/test_classifier.py tests/test_bad_input.py tests/test_faults.py tests/test_fuzz.py \
    tests/test_threads.py tests/test_datasets.py tests/test_label_clusters.py \
    tests/test_interrupt.py::test_sigint_during_partial_fit
fi

mkdir -p "$WORK"
echo "== building the sanitized extension in $BUILD (log: $WORK/cmake.log)"
GENERATOR=()
if command -v ninja > /dev/null; then GENERATOR=(-G Ninja); fi
cmake -S "$ROOT" -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX" -DSLIDE_SANITIZE=ON -DSLIDE_DEBUG_CHECKS=ON \
  -DPython_EXECUTABLE="$(command -v "$PYTHON")" \
  -Dpybind11_DIR="$("$PYTHON" -c 'import pybind11; print(pybind11.get_cmake_dir())')" > "$WORK/cmake.log"
cmake --build "$BUILD" >> "$WORK/cmake.log"

rm -rf "$PKG" "$LOGS" && mkdir -p "$PKG" "$SHIM" "$LOGS"
cp -r "$ROOT/sklearn_slide" "$PKG/"
find "$PKG" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
cp "$BUILD"/_slide_core*.so "$PKG/sklearn_slide/"
cat > "$SHIM/sitecustomize.py" << 'EOF'
# Drop editable-install import hooks so that PYTHONPATH's sklearn_slide is imported.
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in type(f).__name__
                    and "Redirecting" not in type(f).__name__]
EOF

export PYTHONPATH="$SHIM:$PKG${PYTHONPATH:+:$PYTHONPATH}"
# The ASan runtime must be loaded before anything else (python is not
# instrumented), and libstdc++ right after it: ASan resolves the real
# __cxa_throw at start-up, and python itself does not load libstdc++.
LD_PRELOAD="$("$CXX" -print-file-name=libasan.so) $("$CXX" -print-file-name=libstdc++.so.6)"
export LD_PRELOAD
export ASAN_OPTIONS="detect_leaks=0:log_path=$LOGS/asan:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$LOGS/ubsan:halt_on_error=0"
# Parallel regions run with 2 threads so that their error paths are exercised.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# Run from the work directory: python puts the cwd first on sys.path, and the
# source tree's sklearn_slide must not shadow the copy.
cd "$WORK"
"$PYTHON" - "$PKG" << 'EOF'
import sys
import sklearn_slide._engine as engine
assert engine.core.__file__.startswith(sys.argv[1]), engine.core.__file__
print("== testing", engine.core.__file__)
EOF

set +e
"$PYTHON" -m pytest -q -p no:cacheprovider --rootdir "$ROOT" -c "$ROOT/pyproject.toml" \
  "${@/#tests\//$ROOT/tests/}"
status=$?
set -e

reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  echo "== sanitizer reports ($LOGS)"
  for report in $reports; do
    echo "--- $report"
    cat "$report"
  done
  [ "$status" -eq 0 ] && status=3
else
  echo "== no sanitizer report"
fi
exit "$status"
