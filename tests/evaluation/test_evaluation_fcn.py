"""The FCN evaluator network, its training loop, and the per-dataset evaluator cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ncvqvae.config import EvaluationConfig
from ncvqvae.data.dataset import PreparedData
from ncvqvae.errors import DataError, TrainingError
from ncvqvae.evaluation import evaluator as evaluator_module
from ncvqvae.evaluation.evaluator import evaluator_info, evaluator_key, get_evaluator
from ncvqvae.evaluation.fcn import FCN, fcn_outputs, train_fcn

pytestmark = pytest.mark.usefixtures("one_thread")


def _two_class(
    n: int, length: int = 32, channels: int = 1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sine vs. minus sine plus noise: separable by any reasonable classifier."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    wave = torch.sin(torch.linspace(0, 6.28, length))
    X = torch.where(y[:, None, None] == 0, wave, -wave).expand(n, channels, length)
    return X + 0.3 * torch.randn(n, channels, length, generator=gen), y


def _prepared(name: str = "toy", n: int = 48, channels: int = 1) -> PreparedData:
    X, y = _two_class(n, channels=channels, seed=1)
    Xt, yt = _two_class(n // 2, channels=channels, seed=2)
    return PreparedData(name=name, X_train=X, y_train=y, X_test=Xt, y_test=yt, n_classes=2)


TINY = EvaluationConfig(evaluator_epochs=3, evaluator_batch_size=16)


def test_fcn_shapes_univariate_and_multivariate() -> None:
    for channels in (1, 3):
        model = FCN(channels, 5)
        x = torch.randn(4, channels, 23)  # odd length: "same" padding keeps it
        assert model.blocks(x).shape == (4, 128, 23)
        assert model.features(x).shape == (4, 128)
        assert model(x).shape == (4, 5)


def test_train_fcn_learns_a_separable_task_on_several_channels() -> None:
    X, y = _two_class(64, channels=2)
    model = train_fcn(X, y, n_classes=2, epochs=5, batch_size=16, seed=0)
    assert not model.training
    Xt, yt = _two_class(40, channels=2, seed=5)
    assert fcn_outputs(model, Xt).accuracy(yt) >= 0.95


def test_train_fcn_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    X, y = _two_class(32)
    before = torch.get_rng_state()
    a = train_fcn(X, y, n_classes=2, epochs=2, batch_size=8, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    b = train_fcn(X, y, n_classes=2, epochs=2, batch_size=8, seed=3)
    c = train_fcn(X, y, n_classes=2, epochs=2, batch_size=8, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_train_fcn_stops_on_a_non_finite_loss() -> None:
    X, y = _two_class(16)
    X[3, 0, 5] = float("nan")
    with pytest.raises(TrainingError, match="step 1"):  # the first step, counted from 1 as the stages do
        train_fcn(X, y, n_classes=2, epochs=1, batch_size=16)


def test_train_fcn_budget_in_steps_and_precisions() -> None:
    """``steps`` counts optimiser steps whatever N; bf16 autocast trains to the same accuracy."""
    X, y = _two_class(16)
    seen: list[int] = []
    train_fcn(X, y, n_classes=2, epochs=1000, steps=5, batch_size=4, on_epoch_end=lambda e, m: seen.append(e))
    assert seen == [0, 1]  # 5 steps of 4 per epoch: epoch 0 whole, epoch 1 cut short after one step
    fp32 = train_fcn(X, y, n_classes=2, epochs=20, batch_size=8, precision="fp32")
    bf16 = train_fcn(X, y, n_classes=2, epochs=20, batch_size=8, precision="bf16")
    out32, out16 = fcn_outputs(fp32, X, precision="fp32"), fcn_outputs(bf16, X, precision="bf16")
    assert out16.features.dtype == np.float64 and out32.accuracy(y) == out16.accuracy(y) == 1.0


def test_train_fcn_rejects_bad_labels() -> None:
    X, y = _two_class(16)
    with pytest.raises(DataError, match="0..1"):
        train_fcn(X, y + 1, n_classes=2, epochs=1)
    with pytest.raises(DataError, match="n_cases"):
        train_fcn(X[:, 0], y, n_classes=2, epochs=1)


def test_fcn_outputs_change_no_state_and_restore_the_mode() -> None:
    X, y = _two_class(16)
    model = FCN(1, 2).train()
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    out = fcn_outputs(model, X, batch_size=5)
    assert model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in snapshot.items())
    assert out.features.shape == (16, 128) and out.probs.shape == (16, 2)
    assert out.features.dtype.name == "float64"
    assert abs(out.probs.sum(axis=1) - 1).max() < 1e-9


def test_evaluator_is_trained_once_then_loaded_from_the_cache() -> None:
    data = _prepared("cache-once")
    model, info = get_evaluator(data, TINY)
    assert info["cached"] is False and 0.0 <= info["test_accuracy"] <= 1.0
    assert evaluator_info(data, TINY)["cached"] is True
    again, info2 = get_evaluator(data, TINY)
    assert info2["cached"] is True and info2["key"] == info["key"] and info2["path"] == info["path"]
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_an_evaluator_near_chance_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    good = _prepared("separable")
    with caplog.at_level("WARNING", logger="ncvqvae.evaluation.evaluator"):
        get_evaluator(good, EvaluationConfig(evaluator_epochs=20, evaluator_batch_size=16))
    assert "near chance" not in caplog.text
    data = _prepared("skewed")
    data.y_test[:] = 0
    data.y_test[:6] = 1  # the most frequent class is 18 of 24: chance 0.75
    assert evaluator_module.chance_accuracy(data.y_test, 2) == pytest.approx(0.75)
    recipe = {"epochs": 3, "batch_size": 16}
    with caplog.at_level("WARNING", logger="ncvqvae.evaluation.evaluator"):
        evaluator_module._warn_if_near_chance(data, {"test_accuracy": 0.95, "recipe": recipe})
        assert "near chance" not in caplog.text
        evaluator_module._warn_if_near_chance(data, {"test_accuracy": 0.76, "recipe": recipe})
    assert "skewed has test accuracy 0.760, near chance (0.750" in caplog.text
    budget = "evaluator_epochs or evaluator_steps, now 3 epochs; 48 training series make 3 steps per epoch"
    assert budget in caplog.text


def test_evaluator_key_follows_data_and_recipe() -> None:
    data = _prepared("keys")
    key = evaluator_key(data, TINY)
    assert evaluator_key(_prepared("keys"), TINY) == key
    assert evaluator_key(data, EvaluationConfig(evaluator_epochs=4, evaluator_batch_size=16)) != key
    assert evaluator_key(data, TINY, seed=1) != key
    other = _prepared("keys")
    other.X_train = other.X_train * 2  # a different normalisation is a different evaluator
    assert evaluator_key(other, TINY) != key
    assert evaluator_info(data, TINY)["cached"] is False


def test_concurrent_requests_train_one_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_train = evaluator_module.train_fcn

    def counting_train(*args: object, **kwargs: object) -> FCN:
        calls.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(evaluator_module, "train_fcn", counting_train)
    data = _prepared("race")
    keys: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            keys.append(get_evaluator(data, TINY)[1]["key"])
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1 and len(set(keys)) == 1 and len(keys) == 3


def test_evaluator_needs_labels_and_a_test_split() -> None:
    data = _prepared("no-test")
    data.X_test = data.y_test = None
    with pytest.raises(DataError, match="test split"):
        get_evaluator(data, TINY)
    data = _prepared("unlabelled")
    data.y_train = None
    with pytest.raises(DataError, match="labelled"):
        get_evaluator(data, TINY)


def test_an_exported_evaluator_is_used_instead_of_the_cache_and_checked_against_the_data(tmp_path) -> None:
    """evaluation.evaluator_path: runs on another machine (another recipe, another arithmetic) share one
    evaluator; one trained on other data is refused, naming the field and the folder."""
    from dataclasses import replace

    from ncvqvae.errors import ConfigError, NcvqvaeError
    from ncvqvae.evaluation.evaluator import evaluator_identity, export_evaluator

    data = _prepared("pinned")
    model, info = get_evaluator(data, TINY)
    with pytest.raises(NcvqvaeError, match="not cached"):
        export_evaluator(evaluator_info(_prepared("never-trained"), TINY), tmp_path / "none")
    out = export_evaluator(info, tmp_path / "evaluators" / "pinned")
    assert sorted(p.name for p in out.iterdir()) == ["fcn.pt", "info.json"]
    # another recipe would be another cache entry: with the path it is the exported evaluator
    other = replace(TINY, evaluator_epochs=7, evaluator_path=str(out))
    pinned, pinned_info = get_evaluator(data, other, precision="bf16")
    assert pinned_info["pinned"] is True and pinned_info["key"] == info["key"]
    assert all(torch.equal(v, pinned.state_dict()[k]) for k, v in model.state_dict().items())
    assert evaluator_info(data, other)["key"] == info["key"]
    assert evaluator_identity(data, other) == (info["key"], info["recipe"])
    assert evaluator_identity(data, TINY)[0] == evaluator_key(data, TINY)
    for call in (get_evaluator, evaluator_info):
        with pytest.raises(DataError, match="evaluation.evaluator_path: .* the prepared data differ"):
            call(_prepared("pinned", n=40), other)
    with pytest.raises(ConfigError, match="evaluation.evaluator_path: .*expected a folder with fcn.pt"):
        get_evaluator(data, replace(TINY, evaluator_path=str(tmp_path / "missing")))
