#!/usr/bin/env python
"""Long fuzzing run of sklearn_slide's input paths, surviving crashes.

Runs the fuzz targets of ``tests/test_fuzz.py`` (the XC reader, the
estimator's input path and damaged unpickled models) for a wall-clock budget.
Each target runs in worker subprocesses, so a segfault or an abort does not
end the campaign: the worker writes the random state of every input before
running it, and when a worker dies the parent saves that state as a
reproducer and starts a new worker.

Recorded per target: executions, outcomes (refused / loaded / accepted /
diverged), findings (unexpected Python exceptions or inputs over the time
limit, with their reproducer) and crashes (worker killed by a signal).

Usage::

    python tools/fuzz_long.py --minutes 10                 # all targets
    python tools/fuzz_long.py --minutes 5 --targets xc     # one target
    python tools/fuzz_long.py --replay state findings/state-3.json

It tests the sklearn_slide that Python imports (check with --which). Exit
status: 0 when there was no crash and no finding, 1 otherwise.
"""

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests" / "test_fuzz.py"
TARGETS = {"xc": "xc_target", "estimator": "estimator_target", "state": "state_target"}
# A worker runs this many inputs, then exits (bounds leaks and keeps the
# parent's progress fresh).
RUNS_PER_WORKER = 2000
PER_INPUT_SECONDS = 10.0
# No progress for this long: the worker is hung; it is killed and recorded.
WORKER_STALL_SECONDS = 120.0


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("sklearn_slide_fuzz_targets", TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def worker(target_name, seed, runs, state_file, result_file, workdir):
    """Runs `runs` inputs; the rng state of the current input is in state_file."""
    import numpy as np

    fuzz = _fuzz_module()
    target = getattr(fuzz, TARGETS[target_name])
    rng = np.random.default_rng(seed)
    counts, findings = {}, []
    signal.signal(signal.SIGALRM, _on_alarm)

    def save():
        with open(result_file + ".tmp", "w") as fh:
            json.dump({"counts": counts, "findings": findings}, fh)
        os.replace(result_file + ".tmp", result_file)

    for i in range(runs):
        if i % 100 == 0:
            save()  # what a crash would otherwise lose
        state = rng.bit_generator.state
        with open(state_file, "w") as fh:
            json.dump(state, fh)
        signal.setitimer(signal.ITIMER_REAL, PER_INPUT_SECONDS)
        try:
            outcome, _ = target(rng, workdir)
        except _Timeout:
            outcome = "finding"
            findings.append({"state": state, "error": f"over {PER_INPUT_SECONDS} s"})
        except Exception as exc:  # noqa: BLE001 - every unexpected exception is a finding
            outcome = "finding"
            findings.append({"state": state, "error": f"{type(exc).__name__}: {exc}"[:2000]})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        counts[outcome] = counts.get(outcome, 0) + 1
    save()


def replay(target_name, state_path):
    """Re-runs one input from a saved rng state, in this process (a crash shows)."""
    import numpy as np

    fuzz = _fuzz_module()
    with open(state_path) as fh:
        saved = json.load(fh)
    state = saved.get("state", saved)
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    with tempfile.TemporaryDirectory() as workdir:
        outcome, reproducer = getattr(fuzz, TARGETS[target_name])(rng, workdir)
    print("outcome:", outcome)
    print("input:", repr(reproducer)[:4000])


def campaign(targets, minutes, out_dir, seed):
    out_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60.0 * minutes
    share = (deadline - time.monotonic()) / len(targets)
    summary = {}
    for index, name in enumerate(targets):
        target_deadline = time.monotonic() + share
        stats = {"executions": 0, "outcomes": {}, "findings": 0, "crashes": 0, "workers": 0}
        worker_seed = seed * 1000 + index * 100_000
        with tempfile.TemporaryDirectory() as tmp:
            state_file = os.path.join(tmp, "state.json")
            result_file = os.path.join(tmp, "result.json")
            err_file = os.path.join(tmp, "stderr.txt")
            while time.monotonic() < target_deadline:
                worker_seed += 1
                for path in (state_file, result_file):
                    if os.path.exists(path):
                        os.remove(path)
                with open(err_file, "w") as err_fh:
                    proc = subprocess.Popen(
                        [sys.executable, __file__, "--worker", name, str(worker_seed),
                         str(RUNS_PER_WORKER), state_file, result_file, tmp],
                        stdout=subprocess.DEVNULL,
                        stderr=err_fh,
                    )
                stats["workers"] += 1
                last_change, last_mtime = time.monotonic(), None
                while proc.poll() is None:
                    time.sleep(0.2)
                    mtime = os.path.getmtime(state_file) if os.path.exists(state_file) else None
                    if mtime != last_mtime:
                        last_change, last_mtime = time.monotonic(), mtime
                    elif time.monotonic() - last_change > WORKER_STALL_SECONDS:
                        proc.kill()
                        break
                    if time.monotonic() > target_deadline + 30:
                        proc.send_signal(signal.SIGTERM)  # a worker outliving the budget
                proc.wait()
                with open(err_file) as fh:
                    err = fh.read()
                if os.path.exists(result_file):  # complete, or up to the last save
                    with open(result_file) as fh:
                        result = json.load(fh)
                    for outcome, n in result["counts"].items():
                        stats["outcomes"][outcome] = stats["outcomes"].get(outcome, 0) + n
                        stats["executions"] += n
                    for finding in result["findings"]:
                        stats["findings"] += 1
                        path = out_dir / f"{name}-finding-{stats['findings']}.json"
                        path.write_text(json.dumps(finding, indent=1))
                        print(f"[{name}] finding: {finding['error'][:200]} -> {path}", flush=True)
                if proc.returncode == 0 or (
                    proc.returncode == -signal.SIGTERM and time.monotonic() > target_deadline
                ):
                    pass  # finished, or stopped at the end of the budget
                else:
                    stats["crashes"] += 1
                    path = out_dir / f"{name}-crash-{stats['crashes']}.json"
                    state = json.load(open(state_file)) if os.path.exists(state_file) else None
                    path.write_text(json.dumps(
                        {"state": state, "returncode": proc.returncode, "stderr": err[-4000:]},
                        indent=1))
                    print(f"[{name}] CRASH (return code {proc.returncode}) -> {path}", flush=True)
        summary[name] = stats
        print(f"[{name}] {json.dumps(stats)}", flush=True)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total wall-clock budget")
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"),
                        help="where reproducers of crashes and findings are written")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--replay", nargs=2, metavar=("TARGET", "STATE_JSON"))
    parser.add_argument("--which", action="store_true", help="print the tested sklearn_slide")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        name, seed, runs, state_file, result_file, workdir = args.worker
        worker(name, int(seed), int(runs), state_file, result_file, workdir)
        return 0
    if args.which:
        import sklearn_slide
        # _engine: prints which compiled core the fuzzer loads.
        import sklearn_slide._engine as engine

        print(sklearn_slide.__file__, engine.CORE_FILE)
        return 0
    if args.replay:
        replay(*args.replay)
        return 0
    start = time.monotonic()
    summary = campaign(args.targets, args.minutes, args.out, args.seed)
    total = sum(s["executions"] for s in summary.values())
    bad = sum(s["crashes"] + s["findings"] for s in summary.values())
    print(f"seed {args.seed}: {total} executions in {time.monotonic() - start:.0f} s, "
          f"{sum(s['crashes'] for s in summary.values())} crashes, "
          f"{sum(s['findings'] for s in summary.values())} findings")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
