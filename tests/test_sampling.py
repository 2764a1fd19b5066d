"""Sampling: classes, determinism, streaming, scale, and export → load round trips in every format."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from ncvqvae.config import Decoding, Stage1Config, Stage2Config
from ncvqvae.data import load_dataset
from ncvqvae.errors import ConfigError, DataError
from ncvqvae.models.tokenizer import build_tokenizer
from ncvqvae.sampling import (
    class_ids_for_labels,
    class_proportional,
    iter_samples,
    sample,
    write_samples,
)
from ncvqvae.stage2 import GenerativeModel, build_prior

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

LABELS = ["-1", "1", "2"]  # original labels of class ids 0, 1, 2


def tiny_model(n_classes: int = 3, precision: str = "auto") -> GenerativeModel:
    """An untrained tiny generator: sampling mechanics do not depend on what the prior learned."""
    torch.manual_seed(0)
    tiny = Stage1Config(method="baseline", hidden_dim=16, n_res_blocks=1, codebook_size=8)
    tokenizer = build_tokenizer(tiny, 1, 32)
    prior = build_prior(Stage2Config(width=32, depth=1), tokenizer, n_classes=n_classes)
    stats = {"name": "sines", "mean": 2.0, "std": 3.0, "normalization": "global", "n_classes": n_classes,
             "class_counts": [10, 20, 30][:n_classes], "label_values": LABELS[:n_classes]}
    decoding = Decoding(steps=4)
    return GenerativeModel(tokenizer.eval(), prior.eval(), decoding, data_stats=stats, precision=precision)


@pytest.fixture(scope="module")
def model(one_thread: None) -> GenerativeModel:
    return tiny_model()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_samples_and_their_classes(model: GenerativeModel) -> None:
    x, y = sample(model, 5, classes=None, generator=gen())
    assert x.shape == (5, 1, 32) and x.dtype == torch.float32 and torch.isfinite(x).all() and y is None
    x, y = sample(model, 4, classes=2, generator=gen())
    assert y.tolist() == [2, 2, 2, 2]
    x, y = sample(model, 3, classes=[0, 2, 1], generator=gen())
    assert y.tolist() == [0, 2, 1] and y.dtype == torch.long
    for bad, message in (([0, 1], "2 class ids for 3"), (3, "out of range"), ([-1, 0, 0], "out of range")):
        with pytest.raises(ConfigError, match=message):
            sample(model, 3, classes=bad)
    with pytest.raises(ConfigError, match="at least 1"):
        sample(model, 0)


def test_class_proportional_and_labels(model: GenerativeModel) -> None:
    assert torch.bincount(class_proportional(60, model)).tolist() == [10, 20, 30]
    seven = class_proportional(7, model)
    assert seven.shape == (7,) and seven.tolist() == sorted(seven.tolist())
    assert torch.bincount(seven, minlength=3).tolist() == [1, 2, 4]  # 1.17, 2.33, 3.5 → largest remainders
    assert class_ids_for_labels(model, ["2", "-1", "1.0"]) == [2, 0, 1]
    with pytest.raises(ConfigError, match="labels: -1, 1, 2"):
        class_ids_for_labels(model, ["7"])


def test_same_generator_same_samples(model: GenerativeModel) -> None:
    a, _ = sample(model, 6, classes=[0, 1, 2, 0, 1, 2], generator=gen(1), batch_size=4)
    b, _ = sample(model, 6, classes=[0, 1, 2, 0, 1, 2], generator=gen(1), batch_size=4)
    c, _ = sample(model, 6, classes=[0, 1, 2, 0, 1, 2], generator=gen(2), batch_size=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the original scale is the normalised one mapped back: x·std + mean
    d, _ = sample(model, 6, classes=[0, 1, 2, 0, 1, 2], generator=gen(1), batch_size=4, denormalize=True)
    torch.testing.assert_close(d, a * 3.0 + 2.0)


def test_sampling_streams_batch_by_batch(model: GenerativeModel) -> None:
    calls: list[int] = []
    handle = model.prior.register_forward_pre_hook(lambda module, inputs: calls.append(inputs[0].shape[0]))
    try:
        stream = iter_samples(model, 10, classes=1, generator=gen(), batch_size=4)
        assert calls == []  # nothing decoded before it is asked for
        x, y = next(stream)
        assert x.shape[0] == 4 and calls == [4] * model.decoding.steps  # one pass per step at guidance 1
        sizes = [x.shape[0]] + [b.shape[0] for b, _ in stream]
        assert sizes == [4, 4, 2]
        calls.clear()
        guided = model.decoding.override(guidance=2.0)
        next(iter_samples(model, 3, classes=1, generator=gen(), decoding=guided))
        assert calls == [6] * model.decoding.steps  # cond and uncond batched together
    finally:
        handle.remove()


def test_sample_and_iter_samples_decode_alike(model: GenerativeModel) -> None:
    """``sample`` is ``iter_samples`` collected, for every decoding option (it once lacked one)."""
    classes = [0, 1, 2, 0, 1]
    options = Decoding(steps=3, temperature=0.7, choice_temperature=0.0, guidance=2.0)
    whole, y = sample(model, 5, classes=classes, decoding=options, generator=gen(4), batch_size=2)
    streamed = list(iter_samples(model, 5, classes=classes, decoding=options, generator=gen(4), batch_size=2))
    assert torch.equal(whole, torch.cat([x for x, _ in streamed])) and y.tolist() == classes
    for option, value in (("choice_temperature", 4.0), ("guidance", 1.0), ("temperature", 1.0), ("steps", 4)):
        other, _ = sample(model, 5, classes=classes, decoding=options.override(**{option: value}),
                          generator=gen(4), batch_size=2)
        assert not torch.equal(other, whole), f"sample() ignores {option}"
    # None = the generator's own decoding
    default, _ = sample(model, 5, classes=classes, generator=gen(4))
    own, _ = sample(model, 5, classes=classes, decoding=model.decoding, generator=gen(4))
    assert torch.equal(default, own)


def test_precisions_agree_closely() -> None:
    fp32, bf16 = tiny_model(precision="fp32"), tiny_model(precision="bf16")
    greedy = fp32.decoding.override(temperature=0.0)
    a, _ = sample(fp32, 8, classes=1, generator=gen(), decoding=greedy)
    b, _ = sample(bf16, 8, classes=1, generator=gen(), decoding=greedy)
    assert torch.isfinite(b).all()
    # greedy decoding from the same network: bf16 rounding may flip a few near-tied tokens, no more, and
    # the decoder's bf16 convolutions move a series by ~1e-3 (its values are ~0.1)
    assert (a - b).abs().amax(dim=(1, 2)).lt(1e-2).float().mean() >= 0.5


@pytest.mark.parametrize("ext", ["npz", "tsv", "csv", "ts", "arff"])
def test_export_load_round_trip(model: GenerativeModel, tmp_path: Path, ext: str) -> None:
    classes = [0, 1, 2, 2, 1, 0, 0]
    x, _ = sample(model, 7, classes=classes, generator=gen(3), batch_size=3)
    path = tmp_path / f"synthetic.{ext}"
    stream = iter_samples(model, 7, classes=classes, generator=gen(3), batch_size=3)
    assert write_samples(path, stream, label_values=model.label_values, name="sines") == 7
    data = load_dataset(path)
    np.testing.assert_array_equal(data.X_train, x.numpy())  # 9 significant digits: float32 exactly
    assert [str(v) for v in data.label_values] == LABELS  # the synthetic set carries the original labels
    assert data.y_train.tolist() == classes


@pytest.mark.parametrize("ext", ["npz", "npy", "csv", "ts"])
def test_unconditional_export(model: GenerativeModel, tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"uncond.{ext}"
    assert write_samples(path, iter_samples(model, 5, generator=gen(), batch_size=2)) == 5
    # a label-less csv is ambiguous to the reader, which assumes a label column unless told otherwise
    data = load_dataset(path, label_column="none" if ext == "csv" else None)
    assert data.X_train.shape == (5, 1, 32) and data.y_train is None


def test_writers_refuse_what_a_format_cannot_hold(model: GenerativeModel, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="label"):
        write_samples(tmp_path / "u.tsv", iter_samples(model, 3, generator=gen()))
    with pytest.raises(DataError, match="cannot store labels"):
        write_samples(tmp_path / "l.npy", iter_samples(model, 3, classes=0, generator=gen()))
    bad = [(torch.full((2, 1, 32), float("nan")), None)]
    with pytest.raises(DataError, match="non-finite"):
        write_samples(tmp_path / "nan.npz", bad)
    assert not any(tmp_path.iterdir())  # nothing half-written is left behind


def test_writer_holds_a_bounded_number_of_batches(tmp_path: Path) -> None:
    """Memory does not grow with n: batch k is gone by the time batch k + 2 is produced."""
    alive: list[weakref.ref] = []

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for k in range(6):
            if k >= 2:
                gc.collect()
                assert alive[k - 2]() is None, f"batch {k - 2} still referenced"
            x = torch.randn(20, 1, 32)
            alive.append(weakref.ref(x))
            yield x, torch.full((20,), k % 3)

    for ext in ("npz", "ts"):
        alive.clear()
        assert write_samples(tmp_path / f"big.{ext}", batches(), label_values=LABELS) == 120
        assert load_dataset(tmp_path / f"big.{ext}").X_train.shape == (120, 1, 32)


def test_plot(model: GenerativeModel, tmp_path: Path) -> None:
    from ncvqvae.evaluation.figures import class_samples_size, plot_samples

    x, y = sample(model, 6, classes=[0, 1, 2, 0, 1, 2], generator=gen())
    real, y_real = torch.randn(9, 1, 32), torch.arange(9) % 3
    path = plot_samples(x, y, real, y_real, tmp_path / "grid.png", class_names=LABELS)
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == class_samples_size(3, n_columns=2)
