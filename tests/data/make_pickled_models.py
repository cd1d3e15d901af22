"""Writes tests/data/models_4088783.pkl.gz: models pickled by sklearn_slide at
main 4088783 (before the issue-13 restructure), with their inputs and outputs.

tests/test_pickle_compat.py loads them with the current code and checks that
they predict the same top-k and continue training as they did then. Made once
(do not regenerate it with newer code: its point is the old code's output) by

    git worktree add /tmp/old 4088783 && cd /tmp/old && pip install . && cd /tmp
    python /path/to/tests/data/make_pickled_models.py /path/to/tests/data/models_4088783.pkl.gz

The data are stored, not regenerated, so that changes to the generator do not
move the check.
"""

import gzip
import pickle
import sys

import numpy as np

import sklearn_slide
from sklearn_slide import SlideClassifier
# _engine: records which kernel set the outputs came from (test_pickle_compat).
from sklearn_slide._engine import active_kernels
from sklearn_slide.datasets import make_extreme_multilabel

K = 5


def outputs(clf, X, modes):
    out = {}
    for mode in modes:
        clf.set_params(inference=mode)
        out[mode] = clf.predict_topk(X, k=min(K, len(clf.classes_)))
    clf.set_params(inference="exact")
    out["predict"] = clf.predict(X)
    return out


def main(path):
    X, Y = make_extreme_multilabel(400, 300, 200, random_state=0)
    X_train, Y_train, X_test = X[:300], Y[:300], X[300:]
    # Multilabel, sparse y, hash tables (every inference mode), plateau schedule.
    lsh = SlideClassifier(hidden_layer_sizes=(16,), hash_family="dwta", n_tables=8,
                          hash_bits=4, min_active=20, max_active=60, max_iter=3,
                          learning_rate_schedule="plateau", random_state=0, n_threads=1)
    lsh.fit(X_train, Y_train)
    # Multiclass with string classes, exact training, two hidden layers.
    y_class = np.array(["a", "b", "c", "d"])[np.asarray(Y_train.argmax(axis=1)).ravel() % 4]
    exact = SlideClassifier(hidden_layer_sizes=(12, 8), hash_family=None, max_iter=2,
                            random_state=0, n_threads=1).fit(X_train, y_class)
    record = {"version": sklearn_slide.__version__, "kernels": active_kernels(), "k": K,
              "X_train": X_train, "Y_train": Y_train, "y_class": y_class, "X_test": X_test,
              "models": {}}
    for name, clf, y, modes in (("lsh", lsh, Y_train, ("exact", "clusters", "lsh")),
                                ("exact", exact, y_class, ("exact",))):
        blob = pickle.dumps(clf)
        before = outputs(clf, X_test, modes)
        clf.partial_fit(X_train, y)  # one more epoch from the pickled state
        after = outputs(clf, X_test, ("exact",))
        record["models"][name] = {"pickle": blob, "modes": modes, "before": before,
                                  "after_partial_fit": after}
    with gzip.open(path, "wb") as fh:
        pickle.dump(record, fh, protocol=4)


if __name__ == "__main__":
    main(sys.argv[1])
