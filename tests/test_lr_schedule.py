"""learning_rate_schedule="plateau" and early_stopping: the rate falls, or
training stops, when held-out P@1 stalls."""

import pickle

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
from sklearn_slide import _lr_schedule as lr_schedule

FAST = dict(hash_family="dwta", min_active=40, random_state=0)


def test_rate_is_divided_after_n_iter_no_change_epochs_without_gain():
    schedule = lr_schedule.new_state(3e-3)
    scores = [0.2, 0.3, 0.3, 0.29, 0.31, 0.31, 0.31]
    actions = [lr_schedule.after_epoch(schedule, s, 2, lower_rate=True, stop=False)
               for s in scores]
    # epochs 3-4 stall (rate / 3), epoch 5 improves, 6-7 stall again (rate / 9).
    assert actions == [None, None, None, "lowered", None, None, "lowered"]
    assert schedule["learning_rate"] == pytest.approx(3e-3 / 9)


def test_early_stopping_stops_at_the_first_plateau_or_after_two_rate_cuts():
    stalled = [0.5] * 12
    alone = lr_schedule.new_state(3e-3)
    actions = [lr_schedule.after_epoch(alone, s, 3, lower_rate=False, stop=True) for s in stalled]
    assert actions.index("stop") == 3 and alone["learning_rate"] == 3e-3
    both = lr_schedule.new_state(3e-3)
    actions = [lr_schedule.after_epoch(both, s, 2, lower_rate=True, stop=True) for s in stalled]
    assert actions[:7] == [None, None, "lowered", None, "lowered", None, "stop"]
    assert both["learning_rate"] == pytest.approx(3e-3 / 9)


def test_early_stopping_ends_fit_when_validation_stalls(xmc_small):
    X, Y, _, _ = xmc_small
    # A rate too small to change any prediction: validation P@1 never improves
    # after the first epoch, so fit stops n_iter_no_change epochs later.
    clf = SlideClassifier(max_iter=10, learning_rate=1e-12, n_iter_no_change=2,
                          early_stopping=True, **FAST).fit(X, Y)
    assert clf.n_iter_ == 3 and len(clf.validation_scores_) == 3
    assert clf.n_samples_seen_ == X.shape[0] - round(0.1 * X.shape[0])
    full = SlideClassifier(max_iter=4, learning_rate=1e-12, early_stopping=False,
                           **FAST).fit(X, Y)
    assert full.n_iter_ == 4 and full.validation_scores_ is None
    assert full.n_samples_seen_ == X.shape[0]
    # With the plateau schedule the first two plateaus lower the rate instead.
    both = SlideClassifier(max_iter=20, learning_rate=1e-12, n_iter_no_change=2,
                           learning_rate_schedule="plateau", early_stopping=True,
                           **FAST).fit(X, Y)
    assert both.n_iter_ == 7 and both.learning_rate_ == pytest.approx(1e-12 / 9)


def test_early_stopping_lets_a_learning_model_train_on(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=4, early_stopping=True, **FAST).fit(X, Y)
    assert clf.n_iter_ == 4  # still improving on this problem after 4 epochs
    assert clf.validation_scores_[-1] > clf.validation_scores_[0]


def test_early_stopping_on_too_few_rows_trains_every_epoch_on_all_of_them(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=3, early_stopping=True, **FAST).fit(X[:4], Y[:4])  # 0.4 rows to hold out
    assert clf.n_iter_ == 3 and clf.validation_scores_ is None and clf.n_samples_seen_ == 4


def test_a_warm_start_scores_its_new_split_afresh(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=2, warm_start=True, n_iter_no_change=2, early_stopping=True,
                          **FAST).fit(X, Y)
    clf._lr_schedule["best"] = 2.0  # unbeatable, were it compared with the new split
    clf.set_params(learning_rate=1e-12, max_iter=10).fit(X, Y)  # stalls after its first epoch
    assert clf.n_iter_ == 2 + 3 and clf._lr_schedule["best"] == clf.validation_scores_[2]


def test_plateau_schedule_holds_out_rows_and_lowers_the_rate(xmc_small):
    X, Y, _, _ = xmc_small
    # With the former defaults (no dropout, LSH candidates) this problem plateaus
    # within 12 epochs.
    former = dict(dropout=0.0, candidates="lsh")
    clf = SlideClassifier(max_iter=12, learning_rate_schedule="plateau", **former,
                          **FAST).fit(X, Y)
    n_train = X.shape[0] - round(0.1 * X.shape[0])
    assert clf.n_samples_seen_ == n_train  # the validation rows are not trained on
    assert len(clf.validation_scores_) == clf.n_iter_ == 12
    assert clf.learning_rate_ < clf.learning_rate  # this problem plateaus within 12 epochs
    # Reproducible, and the rate it reached survives pickling and drives a warm start.
    again = SlideClassifier(max_iter=12, learning_rate_schedule="plateau", **former,
                            **FAST).fit(X, Y)
    assert again.validation_scores_ == clf.validation_scores_
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.learning_rate_ == clf.learning_rate_
    loaded.set_params(warm_start=True, max_iter=1).fit(X, Y)
    assert loaded.learning_rate_ <= clf.learning_rate_ and len(loaded.validation_scores_) == 13


def test_constant_schedule_follows_the_parameter_across_warm_starts(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=1, warm_start=True, early_stopping=False, **FAST).fit(X, Y)
    assert clf.learning_rate_ == 3e-3 and clf.validation_scores_ is None
    clf.set_params(learning_rate=1e-3).fit(X, Y)
    assert clf.learning_rate_ == 1e-3


def test_too_few_rows_to_hold_out_is_refused(xmc_small):
    X, Y, _, _ = xmc_small
    with pytest.raises(ValueError, match="validation_fraction"):
        SlideClassifier(learning_rate_schedule="plateau", validation_fraction=0.01,
                        max_iter=1, **FAST).fit(X[:20], Y[:20])
    with pytest.raises(ValueError, match="validation_fraction"):
        SlideClassifier(validation_fraction=1.5).fit(X, Y)


def test_model_saved_before_schedules_trains_at_its_learning_rate(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=1, learning_rate=2e-3, **FAST).fit(X[:300], Y[:300])
    old = dict(clf.__getstate__())
    for name in ("_lr_schedule", "learning_rate_", "validation_scores_",
                 "learning_rate_schedule", "validation_fraction", "n_iter_no_change",
                 "early_stopping"):
        del old[name]
    loaded = SlideClassifier.__new__(SlideClassifier)
    loaded.__setstate__(old)
    assert loaded.learning_rate_ == 2e-3 and loaded.validation_scores_ is None
    loaded.partial_fit(X[:300], Y[:300])
    assert np.isfinite(loaded.loss_curve_[-1])
