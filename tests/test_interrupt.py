"""Ctrl-C (SIGINT) stops long native calls quickly and leaves a usable estimator."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from sklearn_slide import SlideClassifier
    from sklearn_slide.datasets import make_extreme_multilabel

    X, Y = make_extreme_multilabel(20000, 20000, 20000, random_state=0)
    clf = SlideClassifier(hash_family="dwta", max_iter=1000, random_state=0)
    what = sys.argv[1]
    if what != "fit":
        clf.set_params(max_iter=1).fit(X[:2000], Y[:2000])
        before = clf._network["params"]["output_weights"].copy()
        n_iter = clf.n_iter_
    if what == "predict":
        X = X[np.arange(2_000_000) % X.shape[0]]
    print("ready", flush=True)
    start = time.perf_counter()
    try:
        if what == "fit":
            clf.fit(X, Y)
        elif what == "warm_start":
            clf.set_params(warm_start=True, max_iter=1000).fit(X, Y)
        else:
            clf.predict_topk(X, k=5)
    except KeyboardInterrupt:
        print("interrupted after", round(time.perf_counter() - start, 2), flush=True)
    else:
        print("not interrupted", flush=True)
        sys.exit(1)
    if what == "fit":
        assert not hasattr(clf, "_network"), "an interrupted fit from scratch must leave no model"
    else:
        assert clf.n_iter_ == n_iter  # no epoch completed
        labels, _ = clf.predict_topk(X[:10], k=3)  # still usable
        assert labels.shape == (10, 3)
        W = clf._network["params"]["output_weights"]
        assert np.isfinite(W).all()
    print("consistent", flush=True)
    """
)


# A process started in the background by a shell without job control (`cmd &`
# in a script, e.g. a CI or landing script) inherits SIGINT as ignored, and
# Python then installs no Ctrl-C handler: the child below would never see the
# signal. It reinstalls Python's handler, as an interactive session has it.
RESTORE_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"


def interrupt_after_ready(script, argument, tmp_path):
    """Runs `script argument` in a fresh Python, sends SIGINT 1.5 s after it
    prints "ready"; returns (returncode, stdout, stderr, seconds to exit)."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTORE_CTRL_C + script, argument],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,  # `python -c` puts the cwd first on sys.path: not the source tree
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.5)  # well inside the native call
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        waited = time.perf_counter() - sent
    finally:
        proc.kill()
    return proc.returncode, out, err, waited


@pytest.mark.parametrize("what", ["fit", "warm_start", "predict"])
def test_sigint_stops_within_a_second(what, tmp_path):
    returncode, out, err, waited = interrupt_after_ready(SCRIPT, what, tmp_path)
    assert returncode == 0, err
    assert "interrupted after" in out and "consistent" in out, out + err
    # Timed inside the child: the signal comes 1.5 s after "ready" (issue 17 asks
    # for about 1 s; 0.0-0.3 s measured on 2 cores at load 3-4.7).
    stopped_after = float(out.split("interrupted after")[1].split()[0])
    assert stopped_after < 1.5 + 1.0, out
    # From the signal to the exit: the script's own checks and the teardown of
    # its arrays too (slow under ASan, docs/reliability.md).
    assert waited < 2.0 + 1.0


PARTIAL_FIT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import scipy.sparse as sp
    from sklearn_slide import SlideClassifier
    from sklearn_slide.datasets import make_extreme_multilabel

    X, Y = make_extreme_multilabel(20000, 20000, 20000, random_state=0)
    clf = SlideClassifier(hash_family="dwta", random_state=0)
    first = sys.argv[1] == "first"
    if not first:
        clf.partial_fit(X[:1000], Y[:1000])
        before = {k: v.copy() for k, v in clf._network["params"].items()
                  if isinstance(v, np.ndarray)}
        kept = (clf.n_iter_, clf.n_samples_seen_, clf.label_counts_.copy(), list(clf.loss_curve_))
        step = int(clf._network["schedule"]["step"])
    # One epoch of 80000 rows: several seconds even on a fast, quiet machine (the
    # signal comes 1.5 s after "ready"; 20000 rows once finished before it).
    X_long, Y_long = sp.vstack([X] * 4, format="csr"), sp.vstack([Y] * 4, format="csr")
    print("ready", flush=True)
    start = time.perf_counter()
    try:
        clf.partial_fit(X_long, Y_long)
    except KeyboardInterrupt:
        print("interrupted after", round(time.perf_counter() - start, 2), flush=True)
    else:
        print("not interrupted", flush=True)
        sys.exit(1)
    if first:
        assert not hasattr(clf, "_network"), "an interrupted first partial_fit leaves no model"
        clf.partial_fit(X[:500], Y[:500])  # starts cleanly
        assert clf.n_iter_ == 1 and clf.n_samples_seen_ == 500
    else:
        # Bookkeeping at the last completed call; weights at the last completed step.
        assert clf.n_iter_ == kept[0] and clf.n_samples_seen_ == kept[1]
        np.testing.assert_array_equal(clf.label_counts_, kept[2])
        assert clf.loss_curve_ == kept[3]
        W = clf._network["params"]["output_weights"]
        assert np.isfinite(W).all()
        # The Adam steps before Ctrl-C are kept (none if it came in the first
        # batch, which is then left before its update): weights and schedule agree.
        took_steps = clf._network["schedule"]["step"] > step
        assert took_steps != np.array_equal(W, before["output_weights"])
        labels, _ = clf.predict_topk(X[:10], k=3)
        assert ((labels >= 0) & (labels < Y.shape[1])).all()
        clf.partial_fit(X[:500], Y[:500])  # and training continues
        assert clf.n_iter_ == kept[0] + 1
    print("consistent", flush=True)
    """
)



@pytest.mark.parametrize("call", ["first", "continued"])
def test_sigint_during_partial_fit(call, tmp_path):
    returncode, out, err, _ = interrupt_after_ready(PARTIAL_FIT_SCRIPT, call, tmp_path)
    assert returncode == 0, out + err
    assert "interrupted after" in out and "consistent" in out, out + err
    stopped_after = float(out.split("interrupted after")[1].split()[0])
    assert stopped_after < 1.5 + 1.0, out  # KeyboardInterrupt within 1 s of the signal


# Ctrl-C inside one long engine step: a table build (the first one, the switch
# from label clusters to LSH, the rebuild at the end of a fit) or one batch. The
# child interrupts itself once the step has started (a watcher thread sees the
# build write bucket numbers, or the engine call begin), and checks from the
# model's state that the step was cut short: tables left unbuilt (a finished
# build holds ids in every table), or no Adam step taken. No clock is read.
INNER_STEP_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import numpy as np
    import scipy.sparse as sp
    # _engine: records the engine call that Ctrl-C interrupts.
    from sklearn_slide import SlideClassifier, _engine as engine
    from sklearn_slide.datasets import make_extreme_multilabel

    what = sys.argv[1]
    n_labels = 20000 if what == "batch" else 100000
    X, Y = make_extreme_multilabel(4096, 2000, n_labels, random_state=0)
    # 400 tables of 100k neurons: a build of about half a second of CPU or more.
    clf = SlideClassifier(hash_family=None if what == "batch" else "dwta", n_tables=400,
                          hidden_layer_sizes=(64,), max_iter=1, random_state=0)
    seen = {}

    def recording(name):
        original = getattr(engine, name)
        def call(*args, **kwargs):
            seen["tables"] = args[1]
            seen["started"] = True
            return original(*args, **kwargs)
        setattr(engine, name, call)

    def built(tables):
        return bool((tables["offsets"][:, -1] > 0).all())

    if what == "first_build":
        clf.set_params(candidates="lsh")
        recording("train_epoch")
        call = lambda: clf.fit(X[:50], Y[:50])
    elif what == "switch_build":
        clf.partial_fit(X[:50], Y[:50])  # candidates="clusters": no tables
        clf.set_params(candidates="lsh")
        recording("train_epoch")
        call = lambda: clf.partial_fit(X[:50], Y[:50])
    elif what == "refresh":
        clf.set_params(candidates="lsh").fit(X[:50], Y[:50])
        assert built(clf._network["tables"])
        recording("rebuild_tables")
        call = lambda: clf.set_params(warm_start=True).fit(X[:50], Y[:50])
    else:  # one batch of 4096 rows through an exact 20000-label layer
        clf.set_params(batch_size=4096).partial_fit(X[:50], Y[:50])
        recording("train_epoch")
        call = lambda: clf.partial_fit(X, Y)
    fitted = hasattr(clf, "_network")
    if fitted:
        before = clf._network["params"]["output_weights"].copy()
        step, n_iter = int(clf._network["schedule"]["step"]), clf.n_iter_

    def watcher():
        while not seen.get("started"):
            time.sleep(0.001)
        if what in ("first_build", "switch_build"):
            # The build writes each neuron's bucket numbers into the id arrays
            # (zeros until then), the first rows first.
            while not seen["tables"]["ids"][:, :64].any():
                time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watcher, daemon=True).start()
    try:
        call()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    else:
        print("not interrupted", flush=True)
        sys.exit(1)
    if what == "first_build":
        assert not built(seen["tables"]), "the build ran to its end"
        assert not hasattr(clf, "_network")
        clf.fit(X[:50], Y[:50])  # starts cleanly
        assert built(clf._network["tables"])
    else:
        network = clf._network
        assert network["schedule"]["step"] == step + (what == "refresh")
        if what == "batch":  # the batch was left before its Adam step
            np.testing.assert_array_equal(network["params"]["output_weights"], before)
        else:
            assert not built(network["tables"]), "the build ran to its end"
            # Unbuilt tables are rebuilt before the next step trains on them.
            assert network["schedule"]["next_rehash_step"] <= network["schedule"]["step"]
        assert clf.n_iter_ == n_iter  # restored: the call did not complete
        clf.partial_fit(X[:50], Y[:50])  # trains on
        if what != "batch":
            assert built(clf._network["tables"])
        labels, _ = clf.predict_topk(X[:10], k=3)
        assert ((labels >= 0) & (labels < n_labels)).all()
    print("consistent", flush=True)
    """
)


@pytest.mark.parametrize("what", ["first_build", "switch_build", "refresh", "batch"])
def test_sigint_inside_a_table_build_or_a_batch(what, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", RESTORE_CTRL_C + INNER_STEP_SCRIPT, what],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "interrupted" in proc.stdout and "consistent" in proc.stdout, proc.stdout
