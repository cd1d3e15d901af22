import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_slide.datasets import make_extreme_multilabel


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
    """P@1 of top-k label arrays against an indicator matrix."""

    def p_at_1(labels, Y):
        Y = sp.csr_matrix(Y)
        return float(np.mean(np.asarray(Y[np.arange(Y.shape[0]), labels[:, 0]]).ravel() != 0))

    return p_at_1
