"""verbose: progress within an epoch, rehash lines, and live loss_curve_ / n_iter_."""

import io
import threading
from contextlib import redirect_stdout

import numpy as np
import pytest

import sklearn_slide._progress as progress
import sklearn_slide._training as training
from sklearn_slide import SlideClassifier


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _stats(n, loss_per_row=2.0):
    return {"n_samples": n, "loss_sum": loss_per_row * n, "n_labelled": n}


def test_terminal_progress_is_one_line_rewritten_in_place():
    out, clock = FakeTerminal(), FakeClock()
    report = progress.EpochProgress(3, 1000, 1, stream=out, clock=clock)
    clock.now += 1.0
    report.update(_stats(250))
    clock.now += 1.0
    report.update(_stats(250, loss_per_row=4.0))
    report.finish("Epoch 3: loss 2.5000, 400 samples/s")
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("Epoch 3: loss 2.5000, 400 samples/s\n")
    drawn = [part.strip() for part in text.split("\r") if part.strip()]
    assert drawn[0] == "Epoch 3: 250/1,000 samples (25%), 250 samples/s, loss 2.0000, ETA 3 s"
    # The running loss is the mean over the rows done so far.
    assert drawn[1] == "Epoch 3: 500/1,000 samples (50%), 250 samples/s, loss 3.0000, ETA 2 s"
    # Each redraw first blanks what the previous one wrote.
    assert "\r" + " " * len(drawn[0]) + "\r" in text


def test_plain_output_prints_a_line_every_ten_seconds_only():
    out, clock = io.StringIO(), FakeClock()
    report = progress.EpochProgress(1, 10_000, 1, stream=out, clock=clock)
    for _ in range(9):
        clock.now += 1.0
        report.update(_stats(100))
    assert out.getvalue() == ""  # a short epoch prints only its summary
    clock.now += 1.5
    report.update(_stats(100))
    assert out.getvalue() == (
        "Epoch 1: 1,000/10,000 samples (10%), 95 samples/s, loss 2.0000, ETA 1 min 34 s\n")
    report.update(_stats(9000))  # the epoch's end: the summary takes over
    report.finish("Epoch 1: done")
    assert out.getvalue().splitlines()[-1] == "Epoch 1: done"
    assert "\r" not in out.getvalue()


def test_rehash_lines_only_at_verbose_2():
    for verbose, expected in ((1, ""), (2, "  rehash #7 of the hash tables at Adam step 1,200 "
                                          "(new hash functions, 0.12 s); next at step 1,300\n"
                                          "  rehash #8 of the hash tables at Adam step 1,300; "
                                          "next at step 1,400\n")):
        out = io.StringIO()
        report = progress.EpochProgress(1, 10, verbose, stream=out)
        report.rehashed(7, 1200, True, 1300, 0.123)
        report.rehashed(8, 1300, False, 1400)
        assert out.getvalue() == expected


def _fit(X, Y, verbose, **params):
    out = io.StringIO()
    with redirect_stdout(out):
        clf = SlideClassifier(hash_family="dwta", min_active=64, max_active=256, max_iter=2,
                              random_state=0, n_threads=2, verbose=verbose, **params).fit(X, Y)
    return clf, out.getvalue()


def test_progress_chunks_train_exactly_as_one_call(xmc_small, monkeypatch):
    # Engine calls of one batch each: many chunk boundaries, many rehashes inside.
    X, Y, _, _ = xmc_small
    monkeypatch.setattr(training, "PROGRESS_CALL_SECONDS", 1e-9)
    calls = []
    real = training.engine.train_epoch
    monkeypatch.setattr(training.engine, "train_epoch",
                        lambda *args, **kwargs: calls.append(len(args[3])) or real(*args, **kwargs))
    often = dict(batch_size=64, rehash_interval=5, rebuild_every=3,  # many rehashes
                 candidates="lsh")
    quiet, _ = _fit(X, Y, 0, **often)
    assert calls == [X.shape[0]] * 2  # verbose=0: one call per epoch
    calls.clear()
    chatty, text = _fit(X, Y, 2, **often)
    assert len(calls) > 2 * (X.shape[0] // 64) - 2 and sum(calls) == 2 * X.shape[0]
    for name, array in quiet._network["params"].items():
        if isinstance(array, np.ndarray):
            np.testing.assert_array_equal(chatty._network["params"][name], array, err_msg=name)
    assert chatty._network["schedule"] == quiet._network["schedule"]
    assert chatty.loss_curve_ == quiet.loss_curve_
    n_rehashes = quiet._network["schedule"]["n_rehashes"]
    # One line per rehash (the first table build included), and the epoch lines.
    assert text.count(" of the hash tables at Adam step ") == n_rehashes > 5
    assert text.count("new hash functions") == (n_rehashes - 1) // 3
    # Rebuilds after the first one are timed.
    assert text.count(" s); next at step") == n_rehashes - 1
    assert "rehash #1 of the hash tables at Adam step 0; next at step 5" in text
    assert len([line for line in text.splitlines() if line.startswith("Epoch ")]) == 2


def test_loss_curve_and_n_iter_are_readable_during_fit(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=6, random_state=0, n_threads=1)
    seen = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append((getattr(clf, "n_iter_", None), len(getattr(clf, "loss_curve_", []))))
            done.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        clf.fit(X, Y)
    finally:
        done.set()
        watcher.join()
    progressed = {n for n, _ in seen if n is not None}
    assert progressed - {6}, "no intermediate epoch count was observed"
    # loss_curve_ is assigned just before n_iter_, and read just after it.
    assert all(n is None or 0 <= length - n <= 1 for n, length in seen)
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6


def test_failed_fit_restores_the_epoch_counters(xmc_small, monkeypatch):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=2, random_state=0, n_threads=1).fit(X, Y)
    before = (clf.n_iter_, list(clf.loss_curve_))
    real = training.engine.train_epoch
    calls = []

    def fail_on_third_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training.engine, "train_epoch", fail_on_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        clf.set_params(max_iter=5).fit(X, Y)  # from scratch: 2 epochs, then the interrupt
    assert (clf.n_iter_, clf.loss_curve_) == before
    fresh = SlideClassifier(max_iter=5, random_state=0, n_threads=1)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X, Y)
    assert not hasattr(fresh, "n_iter_") and not hasattr(fresh, "loss_curve_")
