"""The dense PyTorch baseline: SlideClassifier's network with a full softmax.

``sparse input -> EmbeddingBag (sum, per-sample weights) + bias -> ReLU (128)
-> Linear over all labels``, loss = cross-entropy against the uniform
distribution over a row's labels (target ``1/|y|`` on each), Adam, CPU.
Adam is PyTorch's fused CPU implementation (same update rule as the default,
less memory traffic). Initialisation mirrors SlideClassifier's (input weights N(0, 0.1), output
weights N(0, 1/sqrt(hidden)), zero biases) so that both start from the same
kind of network.
"""

import math
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


class DenseNet(nn.Module):
    def __init__(self, n_features, n_labels, hidden=128, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.embed = nn.EmbeddingBag(n_features, hidden, mode="sum")
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        self.out = nn.Linear(hidden, n_labels)
        with torch.no_grad():
            self.embed.weight.normal_(0.0, 0.1, generator=gen)
            self.out.weight.normal_(0.0, math.sqrt(1.0 / hidden), generator=gen)
            self.out.bias.zero_()

    def forward(self, indices, offsets, values):
        h = self.embed(indices, offsets, per_sample_weights=values) + self.hidden_bias
        return self.out(torch.relu(h))


def _batch_tensors(X, start, stop):
    lo, hi = X.indptr[start], X.indptr[stop]
    indices = torch.from_numpy(X.indices[lo:hi].astype(np.int64))
    values = torch.from_numpy(X.data[lo:hi])
    offsets = torch.from_numpy((X.indptr[start:stop] - lo).astype(np.int64))
    return indices, offsets, values


def _target_tensors(Y, start, stop):
    """(row in batch, label, weight 1/|y|) for every positive of rows start:stop."""
    lo, hi = Y.indptr[start], Y.indptr[stop]
    counts = np.diff(Y.indptr[start:stop + 1])
    rows = np.repeat(np.arange(stop - start), counts)
    weights = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
    return (torch.from_numpy(rows), torch.from_numpy(Y.indices[lo:hi].astype(np.int64)),
            torch.from_numpy(weights))


def batch_loss(logits, Y, start, stop):
    """Mean over rows start:stop of the cross-entropy against 1/|y| on the true labels."""
    rows, labels, weights = _target_tensors(Y, start, stop)
    logp = torch.log_softmax(logits, dim=1)
    return -(logp[rows, labels] * weights).sum() / (stop - start)


def make_model(n_features, n_labels, lr=1e-3, hidden=128, seed=0, threads=2):
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(seed)
    model = DenseNet(n_features, n_labels, hidden, seed)
    # The fused CPU kernel: ~1.6x less CPU per step than the default foreach Adam here.
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    return model, optimizer


def train_epoch(model, optimizer, X, Y, batch_size=128, rng=None, max_batches=None):
    """One epoch over shuffled rows; returns (seconds, mean loss, rows seen)."""
    start = time.perf_counter()
    if rng is not None:
        perm = rng.permutation(X.shape[0])
        X, Y = X[perm], Y[perm]
    X, Y = sp.csr_matrix(X), sp.csr_matrix(Y)
    model.train()
    total, n_batches, seen = 0.0, 0, 0
    for lo in range(0, X.shape[0], batch_size):
        if max_batches is not None and n_batches >= max_batches:
            break
        hi = min(lo + batch_size, X.shape[0])
        indices, offsets, values = _batch_tensors(X, lo, hi)
        loss = batch_loss(model(indices, offsets, values), Y, lo, hi)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
        n_batches += 1
        seen += hi - lo
    return time.perf_counter() - start, total / max(n_batches, 1), seen


@torch.no_grad()
def predict_topk(model, X, k=5, max_bytes=2**28):
    """Top-k label ids, scoring all labels in row chunks of at most ``max_bytes`` logits."""
    model.eval()
    X = sp.csr_matrix(X)
    n_labels = model.out.out_features
    chunk = max(16, min(4096, max_bytes // (4 * n_labels)))
    out = np.empty((X.shape[0], k), dtype=np.int64)
    for lo in range(0, X.shape[0], chunk):
        hi = min(lo + chunk, X.shape[0])
        logits = model(*_batch_tensors(X, lo, hi))
        out[lo:hi] = torch.topk(logits, k, dim=1).indices.numpy()
    return out
