import pytest

from sklearn_slide.datasets import make_extreme_multilabel
from sklearn_slide.metrics import precision_at_k


@pytest.fixture(scope="session")
def xmc_small():
    """A small generated XMC problem: (X_train, Y_train, X_test, Y_test), CSR."""
    X, Y = make_extreme_multilabel(3000, 3000, 400, random_state=0)
    return X[:2500], Y[:2500], X[2500:], Y[2500:]


@pytest.fixture(scope="session")
def xmc_planted():
    """>= 5,000 labels, learnable: the sampled path's acceptance problem."""
    X, Y = make_extreme_multilabel(12000, 20000, 5000, random_state=0)
    return X[:10000], Y[:10000], X[10000:], Y[10000:]


@pytest.fixture(scope="session")
def precision_at_1():
    """P@1 of top-k label arrays against an indicator matrix (the public metric)."""
    return lambda labels, Y: precision_at_k(Y, labels, k=1)
