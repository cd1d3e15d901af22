"""The engine against a NumPy reference of the same training steps.

Every output neuron is active (exact mode), one thread: forward, softmax
cross-entropy against the uniform distribution over a row's labels, backward,
and lazy Adam (rows without gradient in a step are skipped; when updated again
their moments first decay over the skipped steps) or dense Adam (every row takes
every step, untouched ones with a zero gradient).
"""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_slide import _network_state as state
# _engine: the engine's step against a NumPy oracle.
from sklearn_slide import _engine as engine

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # Adam's (Kingma & Ba); the engine's must be these


def config(learning_rate, batch_size, dense_adam=False, logq_correction=False, **options):
    """Exact training, one thread; Adam's betas and epsilon are the engine's own."""
    options = {**dict(exact=True, hash_bits=2, bucket_size=8, min_active=0, max_active=100,
                      learning_rate=learning_rate, batch_size=batch_size, n_threads=1, seed=0,
                      rehash_growth=1.0, rebuild_every=0,
                      adam_updates="dense" if dense_adam else "lazy",
                      logq_correction=logq_correction, dropout=0.0), **options}
    return engine.training_config(**options)


def epoch(params, tables, X, Y, order, cfg, schedule):
    return engine.train_epoch(params, tables, engine.training_data(X, Y), order, cfg, schedule,
                              check_state=True)


def relu(a):
    return np.maximum(a, 0.0)


def reference_gradients(p, X, Y, hidden, last_hidden_scale=None):
    """Gradients (float64) of the mean loss over the batch rows; the last hidden
    activation is multiplied by `last_hidden_scale` (a dropout mask) if given."""
    n = X.shape[0]
    grads = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    for i in range(n):
        labels = np.flatnonzero(Y[i])
        if labels.size == 0:
            continue
        zs = [relu(X[i] @ p["hidden_weights_0"] + p["hidden_biases_0"])]
        for layer in range(1, hidden):
            zs.append(relu(p[f"hidden_weights_{layer}"] @ zs[-1] + p[f"hidden_biases_{layer}"]))
        scale = 1.0 if last_hidden_scale is None else last_hidden_scale
        zs[-1] = zs[-1] * scale
        logits = p["output_weights"] @ zs[-1] + p["output_biases"]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        target = np.zeros_like(prob)
        target[labels] = 1.0 / labels.size
        delta = (prob - target) / n
        grads["output_weights"] += np.outer(delta, zs[-1])
        grads["output_biases"] += delta
        d = (p["output_weights"].T @ delta) * (zs[-1] > 0) * scale
        for layer in range(hidden - 1, 0, -1):
            grads[f"hidden_weights_{layer}"] += np.outer(d, zs[layer - 1])
            grads[f"hidden_biases_{layer}"] += d
            d = (p[f"hidden_weights_{layer}"].T @ d) * (zs[layer - 1] > 0)
        grads["hidden_biases_0"] += d
        grads["hidden_weights_0"] += np.outer(X[i], d)
    return grads


def reference_adam(p, m, v, g, last_step, t, lr, touched_rows=None):
    """Lazy Adam on one tensor; touched_rows=None: every row updated."""
    rows = np.arange(p.shape[0]) if touched_rows is None else np.flatnonzero(touched_rows)
    lr_t = lr * np.sqrt(1 - BETA2**t) / (1 - BETA1**t)
    for r in rows:
        gap = t - last_step[r] - 1 if last_step is not None and last_step[r] > 0 else 0
        m[r] = BETA1 ** (gap + 1) * m[r] + (1 - BETA1) * g[r]
        v[r] = BETA2 ** (gap + 1) * v[r] + (1 - BETA2) * g[r] ** 2
        p[r] -= lr_t * m[r] / (np.sqrt(v[r]) + EPS)
        if last_step is not None:
            last_step[r] = t


def param_names(n_hidden):
    names = [f"hidden_weights_{i}" for i in range(n_hidden)]
    return names + [f"hidden_biases_{i}" for i in range(n_hidden)] + ["output_weights",
                                                                      "output_biases"]


def reference_steps(params, dense, Y, batches, lr, n_hidden, dense_adam, last_hidden_scale=None):
    """The reference's parameters (float64) and row steps after each batch."""
    ref = {k: v.astype(np.float64) for k, v in params.items() if isinstance(v, np.ndarray)}
    ref["input_row_step"] = params["input_row_step"].copy()
    ref["output_row_step"] = params["output_row_step"].copy()
    names = param_names(n_hidden)
    snapshots = []
    for t, rows in enumerate(batches, start=1):
        p = {k: ref[k] for k in names}
        g = reference_gradients(p, dense[rows].astype(np.float32).astype(np.float64), Y[rows],
                                n_hidden, last_hidden_scale)
        out_step = ref["output_row_step"].copy()
        touched_out = np.abs(g["output_weights"]).sum(axis=1) + np.abs(g["output_biases"]) > 0
        touched_in = (dense[rows][Y[rows].any(axis=1)] != 0).any(axis=0)  # labelled rows'
        if dense_adam:  # every row steps, with a zero gradient where it got none
            touched_out = touched_in = None
        reference_adam(ref["output_weights"], ref["output_weights_adam_m"],
                       ref["output_weights_adam_v"], g["output_weights"],
                       ref["output_row_step"], t, lr, touched_out)
        reference_adam(ref["output_biases"][:, None], ref["output_biases_adam_m"][:, None],
                       ref["output_biases_adam_v"][:, None], g["output_biases"][:, None],
                       out_step, t, lr, touched_out)
        reference_adam(ref["hidden_weights_0"], ref["hidden_weights_0_adam_m"],
                       ref["hidden_weights_0_adam_v"], g["hidden_weights_0"],
                       ref["input_row_step"], t, lr, touched_in)
        for name in names:
            if name in ("output_weights", "output_biases", "hidden_weights_0"):
                continue
            flat = lambda a: a.reshape(1, -1)  # noqa: E731 - dense tensors: one "row"
            reference_adam(flat(ref[name]), flat(ref[name + "_adam_m"]),
                           flat(ref[name + "_adam_v"]), flat(g[name]), None, t, lr)
        snapshots.append({k: v.copy() for k, v in ref.items()})
    return snapshots


def assert_matches_reference(params, ref, n_hidden):
    for name in param_names(n_hidden):
        np.testing.assert_allclose(params[name], ref[name], rtol=2e-4, atol=2e-6, err_msg=name)
        np.testing.assert_allclose(params[name + "_adam_m"], ref[name + "_adam_m"],
                                   rtol=2e-4, atol=1e-7, err_msg=name + "_adam_m")
    np.testing.assert_array_equal(params["input_row_step"], ref["input_row_step"])
    np.testing.assert_array_equal(params["output_row_step"], ref["output_row_step"])


def random_network(n_features, hidden_layer_sizes, n_labels, rng):
    params = state.init_params(n_features, hidden_layer_sizes, n_labels, rng)
    # Larger weights than the default init so every ReLU path is exercised.
    for key in params:
        if key.startswith(("hidden_weights", "output_weights")) and "adam" not in key:
            params[key][:] = rng.standard_normal(params[key].shape) * 0.5
    return params


@pytest.mark.parametrize("adam_updates", ["lazy", "dense"])
@pytest.mark.parametrize("hidden_layer_sizes", [(6,), (6, 5)])
def test_two_steps_match_numpy(hidden_layer_sizes, adam_updates):
    rng = np.random.RandomState(0)
    n_features, n_labels, batch = 12, 7, 4
    params = random_network(n_features, hidden_layer_sizes, n_labels, rng)
    # Three batches. Features 0-3 are absent from the second, so their rows skip
    # step 2 and the lazy rule (moments decay over skipped steps) acts at step 3;
    # features 4-5 are absent from the first batch (first update at step 2).
    # Dense Adam steps all of them every time.
    n_rows = 3 * batch
    dense = (rng.rand(n_rows, n_features) < 0.5) * rng.rand(n_rows, n_features)
    dense[2 * batch:, :6] += 0.5  # every one of them present in the third batch
    dense[batch:2 * batch, :4] = 0
    dense[:batch, 4:6] = 0
    X = sp.csr_matrix(dense.astype(np.float32))
    Y = np.zeros((n_rows, n_labels), dtype=np.float32)
    for i in range(n_rows):
        Y[i, rng.choice(n_labels, size=1 + i % 3, replace=False)] = 1
    Y[3] = 0  # a row without labels contributes nothing
    Ycsr = sp.csr_matrix(Y)

    hidden = len(hidden_layer_sizes)
    lr = 0.05
    dense_adam = adam_updates == "dense"
    batches = [slice(0, batch), slice(batch, 2 * batch), slice(2 * batch, n_rows)]
    ref = reference_steps(params, dense, Y, batches, lr, hidden, dense_adam)[-1]

    schedule = state.init_schedule(50, 0)
    stats = epoch(params, None, X, Ycsr, np.arange(n_rows, dtype=np.int64),
                  config(lr, batch, dense_adam), schedule)
    assert schedule["step"] == 3
    assert stats["n_labelled"] == n_rows - 1
    assert_matches_reference(params, ref, hidden)
    assert np.all(params["input_row_step"][:6] == 3)  # 0-3 skipped step 2, 4-5 step 1
    if dense_adam:
        assert np.all(params["input_row_step"] == 3)


@pytest.mark.parametrize("adam_updates", ["lazy", "dense"])
def test_rows_without_gradient_move_by_momentum_only_with_dense_adam(adam_updates):
    rng = np.random.RandomState(2)
    n_features, n_labels, batch = 8, 5, 3
    params = random_network(n_features, (4,), n_labels, rng)
    # The second batch has no labels: no output or input row gets a gradient at
    # step 2. Dense Adam still moves every row by its momentum
    # (m = beta1 m, v = beta2 v, w -= lr_t m / (sqrt(v) + eps)); lazy Adam leaves
    # them, and at step 3 decays their moments over the skipped step.
    dense = rng.rand(3 * batch, n_features) + 0.1
    Y = np.zeros((3 * batch, n_labels), dtype=np.float32)
    Y[np.arange(3 * batch), rng.randint(n_labels, size=3 * batch)] = 1
    Y[batch:2 * batch] = 0
    X, Ycsr = sp.csr_matrix(dense.astype(np.float32)), sp.csr_matrix(Y)
    lr = 0.05
    dense_adam = adam_updates == "dense"
    batches = [slice(0, batch), slice(batch, 2 * batch), slice(2 * batch, 3 * batch)]
    refs = reference_steps(params, dense, Y, batches, lr, 1, dense_adam)

    schedule = state.init_schedule(50, 0)
    snapshots = []
    for rows, ref in zip(batches, refs):
        epoch(params, None, X, Ycsr, np.arange(rows.start, rows.stop, dtype=np.int64),
              config(lr, batch, dense_adam), schedule)
        assert_matches_reference(params, ref, 1)
        snapshots.append({k: v.copy() for k, v in params.items() if isinstance(v, np.ndarray)})

    first, second = snapshots[0], snapshots[1]
    lr_2 = lr * np.sqrt(1 - BETA2**2) / (1 - BETA1**2)
    for name in ("output_weights", "output_biases", "hidden_weights_0"):
        w, m, v = (first[name + suffix].astype(np.float64) for suffix in ("", "_adam_m", "_adam_v"))
        moving = m != 0  # got a gradient at step 1 (a dead ReLU unit's column did not)
        assert np.all(moving.reshape(len(m), -1).any(axis=1))
        if dense_adam:
            m, v = BETA1 * m, BETA2 * v
            expected = w - lr_2 * m / (np.sqrt(v) + EPS)
            np.testing.assert_allclose(second[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)
            np.testing.assert_allclose(second[name + "_adam_m"], m, rtol=1e-6, err_msg=name)
            np.testing.assert_array_equal(second[name] != first[name], moving, err_msg=name)
        else:
            np.testing.assert_array_equal(second[name], first[name], err_msg=name)


def test_loss_matches_numpy_at_initialisation():
    rng = np.random.RandomState(1)
    params = state.init_params(10, (4,), 5, rng)
    X = sp.random(6, 10, density=0.5, format="csr", random_state=1, dtype=np.float32)
    Y = sp.csr_matrix(np.eye(5, dtype=np.float32)[[0, 1, 2, 3, 4, 0]])
    z = relu(X.toarray().astype(np.float64) @ params["hidden_weights_0"] + params["hidden_biases_0"])
    logits = z @ params["output_weights"].T.astype(np.float64) + params["output_biases"]
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(6), [0, 1, 2, 3, 4, 0]].sum()
    stats = epoch(params, None, X, Y, np.arange(6, dtype=np.int64), config(1e-3, 6),
                  state.init_schedule(50, 0))
    assert stats["loss_sum"] == pytest.approx(expected, rel=1e-5)


# 3,000 negatives: more members than the sampler's set starts with (it grows).
@pytest.mark.parametrize("n_labels,m", [(40, 7), (5000, 3000)])
@pytest.mark.parametrize("logq_correction", [False, True])
def test_sampled_loss_with_random_negatives_matches_numpy(logq_correction, n_labels, m):
    # One sample, max_active = 1 (its true label: no bucket candidates), so the
    # active set is the label plus m uniform negatives; the engine marks every
    # row it touched with the step, which tells the reference which were drawn.
    rng = np.random.RandomState(2)
    params = state.init_params(10, (4,), n_labels, rng)
    initial = {k: np.array(v, copy=True) for k, v in params.items()}
    X = sp.random(1, 10, density=0.6, format="csr", random_state=2, dtype=np.float32)
    Y = sp.csr_matrix(np.eye(n_labels, dtype=np.float32)[[3]])
    tables = state.init_tables(2, 2, n_labels)
    cfg = config(1e-3, 1, logq_correction=logq_correction, exact=False,
                 min_active=1 + m, max_active=1)
    schedule = state.init_schedule(50, 0)
    engine.rebuild_tables(params, tables, cfg, schedule)
    stats = epoch(params, tables, X, Y, np.zeros(1, dtype=np.int64), cfg, schedule)
    active = np.flatnonzero(params["output_row_step"] == 1)
    assert 3 in active and len(active) == 1 + m
    negatives = active[active != 3]
    z = relu(X.toarray().astype(np.float64) @ initial["hidden_weights_0"]
             + initial["hidden_biases_0"])[0]
    logits = initial["output_weights"].astype(np.float64) @ z + initial["output_biases"]
    offset = np.log((n_labels - 1) / m) if logq_correction else 0.0
    shown = np.concatenate([[logits[3]], logits[negatives] + offset])
    expected = -(shown[0] - np.log(np.exp(shown).sum()))
    assert stats["loss_sum"] == pytest.approx(expected, rel=1e-5)


def test_logq_correction_leaves_exact_training_unchanged():
    # Every neuron active: nothing was drawn, nothing to correct.
    X = sp.random(8, 10, density=0.5, format="csr", random_state=3, dtype=np.float32)
    Y = sp.csr_matrix(np.eye(5, dtype=np.float32)[[0, 1, 2, 3, 4, 0, 1, 2]])
    runs = []
    for logq_correction in (False, True):
        params = state.init_params(10, (4,), 5, np.random.RandomState(3))
        stats = epoch(params, None, X, Y, np.arange(8, dtype=np.int64),
                      config(1e-3, 4, logq_correction=logq_correction),
                      state.init_schedule(50, 0))
        runs.append((stats["loss_sum"], params["output_weights"].copy()))
    assert np.isfinite(runs[1][0]) and runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("dropout", [0.25, 0.5])
def test_dropout_step_matches_numpy_with_the_engines_mask(dropout):
    # One sample, one step. Every hidden unit is alive (large biases), so the
    # columns of the output layer's Adam moment that stayed zero are exactly the
    # units the engine dropped; the reference then trains with that mask and the
    # 1 / (1 - dropout) scale of the kept units, in the forward and the backward.
    rng = np.random.RandomState(3)
    n_features, n_units, n_labels = 10, 32, 6
    params = random_network(n_features, (n_units,), n_labels, rng)
    params["hidden_biases_0"][:] = 5.0
    dense = rng.rand(1, n_features) * (rng.rand(1, n_features) < 0.6)
    Y = np.zeros((1, n_labels), dtype=np.float32)
    Y[0, [1, 4]] = 1
    lr = 0.05
    ref_input = {k: np.array(v, copy=True) for k, v in params.items()}
    stats = epoch(params, None, sp.csr_matrix(dense.astype(np.float32)), sp.csr_matrix(Y),
                  np.zeros(1, dtype=np.int64), config(lr, 1, dropout=dropout),
                  state.init_schedule(50, 0))
    kept = np.abs(params["output_weights_adam_m"]).sum(axis=0) > 0
    assert 0 < kept.sum() < n_units  # P(no unit dropped) = (1 - dropout)^32
    scale = kept / (1.0 - dropout)
    ref = reference_steps(ref_input, dense, Y, [slice(0, 1)], lr, 1, False, scale)[-1]
    assert_matches_reference(params, ref, 1)
    z = relu(dense[0].astype(np.float32) @ ref_input["hidden_weights_0"].astype(np.float64)
             + ref_input["hidden_biases_0"]) * scale
    logits = ref_input["output_weights"].astype(np.float64) @ z + ref_input["output_biases"]
    logp = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert stats["loss_sum"] == pytest.approx(-logp[[1, 4]].mean(), rel=1e-5)


def test_dropout_draws_a_new_mask_per_sample_and_spares_prediction():
    # Copies of one sample at different positions of training draw different
    # masks, and the dropped fraction over many samples is close to the rate.
    rng = np.random.RandomState(4)
    n_units, n_rows, rate = 64, 40, 0.5
    params = random_network(8, (n_units,), 5, rng)
    params["hidden_biases_0"][:] = 5.0
    X = sp.csr_matrix(np.tile(rng.rand(1, 8).astype(np.float32), (n_rows, 1)))
    Y = sp.csr_matrix(np.tile(np.eye(5, dtype=np.float32)[[2]], (n_rows, 1)))
    before = {k: np.array(v, copy=True) for k, v in params.items()}
    dropped = []
    for row in range(n_rows):
        trial = {k: np.array(v, copy=True) for k, v in before.items()}
        schedule = state.init_schedule(50, 0)
        schedule["samples_seen"] = row  # the sample's stream: (seed, samples seen + slot)
        epoch(trial, None, X, Y, np.array([row], dtype=np.int64), config(0.05, 1, dropout=rate),
              schedule)
        dropped.append(np.abs(trial["output_weights_adam_m"]).sum(axis=0) == 0)
    dropped = np.array(dropped)
    assert len({tuple(d) for d in dropped}) == n_rows  # samples' own streams
    assert abs(dropped.mean() - rate) < 0.05  # 2,560 draws: sd 0.01
    # Prediction sees every unit, unscaled: the training-time mask is not applied.
    trained = {k: np.array(v, copy=True) for k, v in before.items()}
    epoch(trained, None, X, Y, np.arange(n_rows, dtype=np.int64),
          config(0.05, 8, dropout=rate), state.init_schedule(50, 0))
    z = relu(X[:1].toarray().astype(np.float64) @ trained["hidden_weights_0"]
             + trained["hidden_biases_0"])
    expected = z @ trained["output_weights"].T.astype(np.float64) + trained["output_biases"]
    np.testing.assert_allclose(engine.predict_scores(trained, X[:1], False, 1), expected,
                               rtol=1e-5, atol=1e-5)


def test_cluster_candidates_are_the_labels_of_the_best_clusters():
    # candidates="clusters": a sample's active set is its true labels and the
    # members of the n_probes clusters whose centres score its hidden vector
    # highest (ties to the lower cluster); min_active=0 adds no random ones.
    # The engine marks every output row it updated with the step.
    from sklearn_slide import _label_clusters as label_clusters

    rng = np.random.RandomState(5)
    n_labels, n_probes, label = 300, 3, 7
    params = random_network(12, (8,), n_labels, rng)
    index = label_clusters.build_label_clusters(params["output_weights"],
                                                params["output_biases"])
    X = sp.random(1, 12, density=0.7, format="csr", random_state=5, dtype=np.float32)
    Y = sp.csr_matrix(np.eye(n_labels, dtype=np.float32)[[label]])
    h = relu(X.toarray()[0].astype(np.float64) @ params["hidden_weights_0"]
             + params["hidden_biases_0"])
    scores = index["centroid_weights"].astype(np.float64) @ h + index["centroid_biases"]
    best = np.argsort(-scores, kind="stable")[:n_probes]
    expected = {label}.union(*(index["ids"][index["offsets"][c]:index["offsets"][c + 1]].tolist()
                               for c in best))
    assert 1 + n_probes <= len(expected) < n_labels
    cfg = config(1e-3, 1, exact=False, min_active=0, max_active=n_labels)
    engine.train_epoch(params, None, engine.training_data(X, Y), np.zeros(1, dtype=np.int64),
                       cfg, state.init_schedule(50, 0), check_state=True, clusters=index,
                       n_probes=n_probes)
    assert set(np.flatnonzero(params["output_row_step"] == 1).tolist()) == expected
