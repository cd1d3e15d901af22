"""The sklearn-slide command line, end to end on generated XC files.

Commands run in a subprocess (as a user runs them, cwd=tmp_path so that the
installed package is imported); the table of user errors runs ``main``
in-process, which returns the exit status a subprocess would get.
"""

import gzip
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import joblib
import numpy as np
import pytest

from sklearn_slide import SlideClassifier
from sklearn_slide._cli import main
from sklearn_slide._cli._estimator_options import format_value, parse_parameter
from sklearn_slide.datasets import dump_xc, load_xc, make_extreme_multilabel
from sklearn_slide.metrics import inverse_propensity, ndcg_at_k, precision_at_k, psprecision_at_k

TRAIN_OPTIONS = ["--max_iter", "2", "--hidden-layer-sizes", "32", "--random_state", "0",
                 "--n_threads", "1"]


def run(cwd, *args, module=True):
    """``python -m sklearn_slide ARGS`` (or the console script) in ``cwd``."""
    command = [sys.executable, "-m", "sklearn_slide"] if module else [_console_script()]
    return subprocess.run(command + [str(a) for a in args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def _console_script():
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        script = Path(folder) / "sklearn-slide"
        if script.exists():
            return str(script)
    found = shutil.which("sklearn-slide")
    assert found, "the sklearn-slide console script is not installed"
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """train.txt, test.txt.gz and a model trained on train.txt by the command line."""
    folder = tmp_path_factory.mktemp("cli")
    X, Y = make_extreme_multilabel(1200, 800, 120, random_state=0)
    dump_xc(X[:1000], Y[:1000], folder / "train.txt")
    dump_xc(X[1000:], Y[1000:], folder / "test.txt.gz")
    result = run(folder, "train", "train.txt", "-o", "model.joblib", "--validation",
                 "test.txt.gz", *TRAIN_OPTIONS)
    assert result.returncode == 0, result.stderr
    return folder, result


def test_train_saves_a_model_and_reports_validation(files):
    folder, result = files
    model = joblib.load(folder / "model.joblib")
    assert isinstance(model, SlideClassifier)
    assert model.n_iter_ == 2 and model.hidden_layer_sizes == (32,) and model.random_state == 0
    # --verbose defaults to 1 on the command line: one line per epoch.
    assert result.stdout.count("Epoch ") == 2
    X_test, Y_test = load_xc(folder / "test.txt.gz", n_features=800, n_labels=120)
    p_at_1 = precision_at_k(Y_test, model.predict_topk(X_test, k=1)[0], k=1)
    table = result.stdout.split("validation (test.txt.gz):\n", 1)[1]
    assert table.splitlines()[1].split()[:2] == ["P", f"{p_at_1:.4f}"]
    assert "saved the model to model.joblib" in result.stderr
    assert not list(folder.glob(".partial-*"))


def test_predict_xc_format_matches_predict_topk(files, tmp_path):
    folder, _ = files
    out = tmp_path / "pred.txt"
    result = run(folder, "predict", "model.joblib", "test.txt.gz", "-k", "3", "-o", out,
                 "--block-rows", "7")
    assert result.returncode == 0, result.stderr
    model = joblib.load(folder / "model.joblib")
    X_test, _ = load_xc(folder / "test.txt.gz", n_features=800)
    labels, scores = model.predict_topk(X_test, k=3)
    lines = out.read_text().splitlines()
    assert lines[0] == "200 120"
    assert len(lines) == 201
    pairs = [[pair.split(":") for pair in line.split()] for line in lines[1:]]
    np.testing.assert_array_equal([[int(lab) for lab, _ in row] for row in pairs], labels)
    np.testing.assert_allclose([[float(s) for _, s in row] for row in pairs], scores, rtol=1e-6)


def test_predict_probabilities(files):
    folder, _ = files
    result = run(folder, "predict", "model.joblib", "test.txt.gz", "-k", "3", "--probabilities",
                 "--block-rows", "64")
    assert result.returncode == 0, result.stderr
    model = joblib.load(folder / "model.joblib")
    X_test, _ = load_xc(folder / "test.txt.gz", n_features=800)
    proba = model.predict_proba(X_test)
    rows = [[pair.split(":") for pair in line.split()] for line in result.stdout.splitlines()[1:]]
    labels = np.array([[int(label) for label, _ in row] for row in rows])
    scores = np.array([[float(score) for _, score in row] for row in rows])
    np.testing.assert_allclose(scores, np.take_along_axis(proba, labels, axis=1), rtol=1e-6)
    np.testing.assert_allclose(scores, -np.sort(-proba, axis=1)[:, :3], rtol=1e-6)  # best first


def test_predict_text_format_to_stdout_and_gzip(files, tmp_path):
    folder, _ = files
    text = run(folder, "predict", "model.joblib", "test.txt.gz", "-k", "2", "--format", "text")
    assert text.returncode == 0, text.stderr
    rows = [line.split() for line in text.stdout.splitlines()]
    assert len(rows) == 400
    assert [int(r[0]) for r in rows] == np.repeat(np.arange(200), 2).tolist()
    xc = run(folder, "predict", "model.joblib", "test.txt.gz", "-k", "2",
             "-o", tmp_path / "pred.txt.gz", module=False)  # the console script
    assert xc.returncode == 0, xc.stderr
    xc_lines = gzip.decompress((tmp_path / "pred.txt.gz").read_bytes()).decode().splitlines()
    assert [f"{r[1]}:{r[2]}" for r in rows[:2]] == xc_lines[1].split()


def test_evaluate_table_and_json_match_the_metrics(files, capsys):
    folder, _ = files
    model = joblib.load(folder / "model.joblib")
    X_test, Y_test = load_xc(folder / "test.txt.gz", n_features=800, n_labels=120)
    labels, _ = model.predict_topk(X_test, k=5)
    w = inverse_propensity(model.label_counts_, model.n_samples_seen_)
    expected = {}
    for k in (1, 5):
        expected[f"P@{k}"] = precision_at_k(Y_test, labels, k=k)
        expected[f"nDCG@{k}"] = ndcg_at_k(Y_test, labels, k=k)
        expected[f"PSP@{k}"] = psprecision_at_k(Y_test, labels, k=k, inv_propensity=w)
    result = run(folder, "evaluate", "model.joblib", "test.txt.gz", "-k", "1", "5", "--json",
                 "--block-rows", "64")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == pytest.approx(expected)
    assert main(["evaluate", str(folder / "model.joblib"), str(folder / "test.txt.gz")]) == 0
    header, p_row, ndcg_row, psp_row = capsys.readouterr().out.splitlines()
    assert header.split() == ["@1", "@3", "@5"]
    assert p_row.split()[0] == "P" and float(p_row.split()[1]) == round(expected["P@1"], 4)
    assert psp_row.split()[0] == "PSP" and float(psp_row.split()[3]) == round(expected["PSP@5"], 4)


def test_evaluate_with_a_prediction_parameter(files):
    folder, _ = files
    result = run(folder, "evaluate", "model.joblib", "test.txt.gz", "--json", "--inference",
                 "clusters", "--n-probes", "2")
    assert result.returncode == 0, result.stderr
    model = joblib.load(folder / "model.joblib").set_params(inference="clusters", n_probes=2)
    X_test, Y_test = load_xc(folder / "test.txt.gz", n_features=800, n_labels=120)
    p_at_1 = precision_at_k(Y_test, model.predict_topk(X_test, k=5)[0], k=1)
    assert json.loads(result.stdout)["P@1"] == pytest.approx(p_at_1)


def test_info(files, capsys):
    folder, _ = files
    result = run(folder, "info", "model.joblib", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["n_features"] == 800 and info["n_labels"] == 120
    assert info["n_iter"] == 2 and len(info["loss_curve"]) == 2
    assert info["n_samples_seen"] == 1000
    assert info["parameters"]["hidden_layer_sizes"] == [32]
    assert main(["info", str(folder / "model.joblib")]) == 0
    text = capsys.readouterr().out
    assert "n_labels                   120" in text and "hash_family" in text


def test_parameters_are_parsed_by_their_constraints(files, tmp_path):
    folder, _ = files
    result = run(folder, "train", "train.txt", "-o", tmp_path / "m.joblib", "--max-iter", "1",
                 "--hidden_layer_sizes", "16,8", "--hash-family", "none", "--logq_correction",
                 "false", "--learning-rate", "0.01", "--n_probes", "None", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    assert "Epoch" not in result.stdout
    params = joblib.load(tmp_path / "m.joblib").get_params()
    assert params["hidden_layer_sizes"] == (16, 8)
    assert params["hash_family"] is None and params["n_probes"] is None
    assert params["logq_correction"] is False and params["learning_rate"] == 0.01


def test_options_not_given_keep_the_estimator_defaults(files):
    folder, _ = files
    given = {"max_iter", "hidden_layer_sizes", "random_state", "n_threads", "verbose"}
    defaults = SlideClassifier().get_params()
    params = joblib.load(folder / "model.joblib").get_params()
    assert {name: params[name] for name in defaults if name not in given} == {
        name: value for name, value in defaults.items() if name not in given}
    assert params["verbose"] == 1


def test_help_states_the_default_of_each_parameter_option(tmp_path):
    defaults = SlideClassifier().get_params()
    result = run(tmp_path, "train", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # undo argparse's line wrapping
    assert f"Samples per Adam step. (int; default: {defaults['batch_size']})" in text
    assert f"(float; default: {defaults['learning_rate']})" in text
    hidden = ",".join(map(str, defaults["hidden_layer_sizes"]))
    assert f"(tuple of int; default: {hidden})" in text
    assert "Progress on standard output. (int; default: 1)" in text  # train's own default
    predict = " ".join(run(tmp_path, "predict", "--help").stdout.split())
    assert "(int or None; default: the model's)" in predict


def test_help_defaults_read_back_as_the_defaults():
    for name, value in SlideClassifier().get_params().items():
        assert parse_parameter(name, format_value(value)) == value, name


def test_user_errors_in_a_subprocess_have_no_traceback(files, tmp_path):
    folder, _ = files
    bad = tmp_path / "bad.txt"
    bad.write_text("2 800 120\n0 1:1\n1,2 3:x\n")
    result = run(folder, "train", bad, "-o", tmp_path / "m", "--hash_bits", "8")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().endswith(f"{bad}, line 3: unexpected character b'x'")
    assert not (tmp_path / "m").exists()


def test_failed_predict_leaves_no_output_file(files, tmp_path):
    folder, _ = files
    # The bad row comes after a whole block of good ones have been written.
    X, Y = make_extreme_multilabel(50, 800, 120, random_state=1)
    path = tmp_path / "late_error.txt"
    dump_xc(X, Y, path)
    path.write_text(path.read_text().rstrip("\n").rsplit("\n", 1)[0] + "\n1 5:1 5:2\n")
    out = tmp_path / "out.txt"
    result = run(folder, "predict", "model.joblib", path, "-o", out, "--block-rows", "10")
    assert result.returncode == 3, result.stderr
    assert "line 51: duplicate feature index 5" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".partial-*"))


def _user_errors(folder, tmp_path):
    wide = tmp_path / "wide.txt"
    wide.write_text("1 900 120\n0 850:1\n")
    not_a_model = folder / "train.txt"
    model = folder / "model.joblib"
    test = folder / "test.txt.gz"
    train = folder / "train.txt"
    out = tmp_path / "out"
    return [
        (["train", train, "-o", out, "--hash_bits", "40"], 2, "'hash_bits' parameter"),
        (["train", train, "-o", out, "--hash_bits", "six"], 2,
         "--hash_bits: expected an integer, got 'six'"),
        (["train", train, "-o", out, "--bucket_policy", "lru"], 2,
         "expected one of fifo, reservoir, got 'lru'"),
        (["train", train, "-o", out, "--shuffle", "maybe"], 2, "expected true or false"),
        (["train", train, "-o", out, "--hidden_layer_sizes", "64,x"], 2,
         "comma-separated integers"),
        (["train", train, "-o", out, "--max", "3"], 2, "unrecognized arguments: --max"),
        (["train", tmp_path / "missing.txt", "-o", out], 3,
         "cannot read " + str(tmp_path / "missing.txt")),
        (["train", train, "-o", tmp_path / "no" / "such" / "m"], 3, "does not exist"),
        (["train", train, "-o", out, "--validation", wide], 3, "has 900 features"),
        (["predict", not_a_model, test], 3, "is not a sklearn-slide model file"),
        (["predict", model, wide], 3, "has 900 features (its header)"),
        (["predict", model, test, "-k", "121"], 2, "-k 121: the model has 120 labels"),
        (["predict", model, test, "-k", "0"], 2, "expected a positive integer"),
        (["predict", model, test, "--precision", "float16"], 2, "--precision"),
        (["predict", model, test, "--max_iter", "3"], 2, "unrecognized arguments"),
        (["evaluate", model, test, "-k", "500"], 2, "the model has 120 labels"),
        (["info", tmp_path / "nothing"], 3, "cannot read model"),
    ]


def test_user_errors_exit_status_and_message(files, tmp_path, capsys):
    folder, _ = files
    joblib.dump(SlideClassifier(), tmp_path / "unfitted.joblib")
    cases = _user_errors(folder, tmp_path) + [
        (["info", tmp_path / "unfitted.joblib"], 3, "never fitted"),
    ]
    for argv, status, message in cases:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
        err = capsys.readouterr().err
        assert (code, message in err) == (status, True), (argv, err)
    assert not (tmp_path / "out").exists()
