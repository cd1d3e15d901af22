"""
From raw text to tags: TfidfVectorizer -> SlideClassifier in one Pipeline
=========================================================================

Usage::

    python examples/text_pipeline.py             # generated documents, under a minute on 2 cores
    python examples/text_pipeline.py --quick     # a few seconds (used by the tests)
    python examples/text_pipeline.py --data DIR  # documents rebuilt from an XC train/test pair

The documents are synthetic: ``make_extreme_multilabel`` draws a sparse
word-count problem with learnable labels, and every feature id becomes a
made-up word ("bako", "miruse", ...), so each row turns into a string of
words and each label into a tag name.  (``--data`` does the same with a real
XC file's bag-of-words features; the original words are not in the file.)

- ``MultiLabelBinarizer(sparse_output=True)`` turns the lists of tags into a
  CSR indicator matrix: the estimator then predicts CSR as well, and
  ``mlb.inverse_transform`` maps a prediction back to tags.
- ``make_pipeline(TfidfVectorizer(...), SlideClassifier(...))`` fits on the
  raw strings; ``xmc_scorer()`` unwraps the Pipeline (the vectorizer
  transforms, the classifier's ``predict_topk`` ranks) to report P@k.
- Ranked tags of new text: ``pipe[-1].predict_topk(pipe[:-1].transform(docs), k)``
  (a Pipeline does not forward ``predict_topk``), then ``mlb.classes_[labels]``.
"""

import argparse
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer

from sklearn_slide import SlideClassifier
from sklearn_slide.datasets import load_xc_folder, make_extreme_multilabel
from sklearn_slide.metrics import xmc_scorer

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


def make_words(n):
    """``n`` distinct pronounceable words: word ``i`` spells ``i`` in base 70 syllables."""
    base = len(_SYLLABLES)
    words = []
    for i in range(n):
        # Two syllables at least, so every word matches TfidfVectorizer's
        # default token pattern (2+ word characters) and words differ in length.
        syllables = [_SYLLABLES[i % base]]
        i //= base
        while i or len(syllables) < 2:
            syllables.append(_SYLLABLES[i % base])
            i //= base
        words.append("".join(syllables))
    return np.array(words)


def to_documents(X, Y, rng):
    """Strings of words (one per non-zero feature, shuffled) and lists of tags."""
    vocabulary = make_words(X.shape[1])
    documents = []
    for row in range(X.shape[0]):
        ids = X.indices[X.indptr[row]:X.indptr[row + 1]]
        documents.append(" ".join(vocabulary[rng.permutation(ids)]))
    tags = [
        [f"tag{label:05d}" for label in Y.indices[Y.indptr[row]:Y.indptr[row + 1]]]
        for row in range(Y.shape[0])
    ]
    return documents, tags


def load_data(args):
    """Train and test (documents, tag lists)."""
    if args.data:
        X_train, Y_train, X_test, Y_test = load_xc_folder(args.data)
    else:
        n_train, n_words, n_tags = (2_000, 3_000, 500) if args.quick else (20_000, 30_000, 5_000)
        X, Y = make_extreme_multilabel(
            n_train + n_train // 5, n_words, n_tags, random_state=args.seed
        )
        X_train, Y_train, X_test, Y_test = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]
    rng = np.random.default_rng(args.seed)
    return to_documents(X_train, Y_train, rng), to_documents(X_test, Y_test, rng)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().partition("\n")[0])
    parser.add_argument("--data", help="folder with train.txt[.gz] and test.txt[.gz] (XC format)")
    parser.add_argument("--quick", action="store_true", help="small problem, few epochs")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    (docs_train, tags_train), (docs_test, tags_test) = load_data(args)
    print(f"{len(docs_train):,} training documents, {len(docs_test):,} test documents; e.g.")
    print(f"  {docs_train[0][:70]!r}... -> {tags_train[0]}")

    # The tag vocabulary is fixed up front (as in XMC benchmarks): a test tag
    # never seen in training is then a column the model cannot predict, which
    # counts as a miss, instead of being dropped from the truth.
    mlb = MultiLabelBinarizer(sparse_output=True).fit(tags_train + tags_test)
    Y_train = mlb.transform(tags_train)
    Y_test = mlb.transform(tags_test)
    print(f"{len(mlb.classes_):,} tags; Y_train is {type(Y_train).__name__} {Y_train.shape}")

    epochs = args.epochs or (3 if args.quick else 5)
    pipe = make_pipeline(
        # float32 is what SlideClassifier trains on: no conversion copy.
        TfidfVectorizer(sublinear_tf=True, dtype=np.float32),
        SlideClassifier(max_iter=epochs, random_state=args.seed),
    )
    start = time.perf_counter()
    pipe.fit(docs_train, Y_train)
    fit_seconds = time.perf_counter() - start
    vectorizer, clf = pipe[0], pipe[-1]
    print(f"fit {fit_seconds:.1f} s: {len(vectorizer.vocabulary_):,} words, {epochs} epochs")

    scores = xmc_scorer(k_values=(1, 3, 5))(pipe, docs_test, Y_test)
    print("test " + "  ".join(
        f"{name} {scores[name]:.3f}" for name in ("P@1", "P@3", "P@5", "nDCG@5", "PSP@5")
    ))

    # Ranked tags for new text (here: the first test documents).
    labels, _ = clf.predict_topk(pipe[:-1].transform(docs_test[:3]), k=3)
    for doc, truth, top in zip(docs_test, tags_test, mlb.classes_[labels]):
        print(f"  {doc[:40]!r}...  true {sorted(truth)}  top-3 {list(top)}")
    # predict() gives the indicator of the top predict_k tags, CSR like Y_train.
    Y_pred = pipe.predict(docs_test[:3])
    print(f"pipe.predict -> {type(Y_pred).__name__} {Y_pred.shape}; as tags: "
          f"{mlb.inverse_transform(Y_pred)[0]}")


if __name__ == "__main__":
    main()
