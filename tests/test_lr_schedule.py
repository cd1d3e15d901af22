"""learning_rate_schedule="plateau": the rate falls when held-out P@1 stalls."""

import pickle

import numpy as np
import pytest

from sklearn_slide import SlideClassifier
from sklearn_slide import _lr_schedule as lr_schedule

FAST = dict(hash_family="dwta", min_active=40, random_state=0)


def test_rate_is_divided_after_n_iter_no_change_epochs_without_gain():
    schedule = lr_schedule.new_state(3e-3)
    scores = [0.2, 0.3, 0.3, 0.29, 0.31, 0.31, 0.31]
    lowered = [lr_schedule.after_epoch(schedule, s, 2) for s in scores]
    # epochs 3-4 stall (rate / 3), epoch 5 improves, 6-7 stall again (rate / 9).
    assert lowered == [False, False, False, True, False, False, True]
    assert schedule["learning_rate"] == pytest.approx(3e-3 / 9)


def test_plateau_schedule_holds_out_rows_and_lowers_the_rate(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=12, learning_rate_schedule="plateau", **FAST).fit(X, Y)
    n_train = X.shape[0] - round(0.1 * X.shape[0])
    assert clf.n_samples_seen_ == n_train  # the validation rows are not trained on
    assert len(clf.validation_scores_) == clf.n_iter_ == 12
    assert clf.learning_rate_ < clf.learning_rate  # this problem plateaus within 12 epochs
    # Reproducible, and the rate it reached survives pickling and drives a warm start.
    again = SlideClassifier(max_iter=12, learning_rate_schedule="plateau", **FAST).fit(X, Y)
    assert again.validation_scores_ == clf.validation_scores_
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.learning_rate_ == clf.learning_rate_
    loaded.set_params(warm_start=True, max_iter=1).fit(X, Y)
    assert loaded.learning_rate_ <= clf.learning_rate_ and len(loaded.validation_scores_) == 13


def test_constant_schedule_follows_the_parameter_across_warm_starts(xmc_small):
    X, Y, _, _ = xmc_small
    clf = SlideClassifier(max_iter=1, warm_start=True, **FAST).fit(X, Y)
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
                 "learning_rate_schedule", "validation_fraction", "n_iter_no_change"):
        del old[name]
    loaded = SlideClassifier.__new__(SlideClassifier)
    loaded.__setstate__(old)
    assert loaded.learning_rate_ == 2e-3 and loaded.validation_scores_ is None
    loaded.partial_fit(X[:300], Y[:300])
    assert np.isfinite(loaded.loss_curve_[-1])
