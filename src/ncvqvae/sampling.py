"""Sampling synthetic series from a trained generator, streamed in batches, and writing them to files.

:func:`iter_samples` is the workhorse: it decodes ``batch_size`` sequences at a time (iterative MaskGIT
decoding → codebook → decoder → ISTFT → optionally the data's original scale) and yields each batch on
the CPU, so memory never grows with ``n``. :func:`sample` collects the batches into one tensor;
:func:`write_samples` streams them into a file whose format follows its extension, through
:func:`ncvqvae.data.formats.write_series_batches` (one batch in memory at a time, renamed into place
atomically):

- ``.npz``: arrays ``X`` (n, C, L) float32 and, when class-conditional, ``y`` (n,) holding the original
  label values; ``.npy``: ``X`` only (unconditional samples).
- ``.tsv`` (UCR: label first, tab-separated, univariate), ``.csv`` (label first when labelled), ``.ts``
  (sktime/aeon, any number of channels), ``.arff``. A synthetic set written this way is a dataset
  :func:`ncvqvae.data.load_dataset` reads back.

Labels are written as the dataset's original label values (``label_values`` recorded by stage 1), so a
synthetic ECG5000 set carries the labels 1..5 like the real one.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncvqvae.config import Decoding
from ncvqvae.data.formats import normalise_labels, write_series_batches
from ncvqvae.errors import ConfigError, DataError
from ncvqvae.maskgit import decode_tokens
from ncvqvae.precision import autocast, autocast_dtype
from ncvqvae.stage2 import GenerativeModel
from ncvqvae.training import make_generator

log = logging.getLogger(__name__)

Classes = int | Sequence[int] | torch.Tensor | None

# --------------------------------------------------------------------------------------------------
# Which classes
# --------------------------------------------------------------------------------------------------


def resolve_classes(model: GenerativeModel, n: int, classes: Classes) -> torch.Tensor | None:
    """The class id of each of the ``n`` samples (LongTensor (n,) on the CPU), or ``None`` (unconditional).

    Args:
        classes: ``None`` (unconditional), one class id for all, or ``n`` class ids.

    Raises:
        ConfigError: classes asked of an unconditional prior, the wrong number of ids, or ids out of range.
    """
    if n < 1:
        raise ConfigError(f"the number of samples must be at least 1, got {n}")
    if classes is None:
        return None
    if model.n_classes == 0:
        raise ConfigError("this prior is unconditional (trained on unlabelled data): sample without classes")
    if isinstance(classes, int):
        ids = torch.full((n,), classes, dtype=torch.long)
    else:
        ids = torch.as_tensor(classes, dtype=torch.long).reshape(-1).cpu()
        if ids.shape[0] != n:
            raise ConfigError(f"got {ids.shape[0]} class ids for {n} samples; give one id, or one per sample")
    bad = ids[(ids < 0) | (ids >= model.n_classes)]
    if bad.numel():
        last = model.n_classes - 1
        raise ConfigError(f"class id {int(bad[0])} is out of range: this prior knows ids 0..{last}")
    return ids


def class_proportional(n: int, model: GenerativeModel) -> torch.Tensor:
    """``n`` class ids in the proportions of the training split, sorted by class.

    Counts are rounded by the largest-remainder method, so they sum to ``n`` exactly.

    Returns:
        LongTensor (n,).
    """
    counts = torch.tensor(model.class_counts, dtype=torch.float64)
    if model.n_classes == 0 or counts.numel() != model.n_classes or counts.sum() <= 0:
        raise ConfigError("class-proportional sampling needs a class-conditional prior with class counts")
    exact = counts / counts.sum() * n
    alloc = exact.floor().long()
    remainder_order = (exact - alloc).argsort(descending=True, stable=True)
    alloc[remainder_order[: n - int(alloc.sum())]] += 1
    return torch.repeat_interleave(torch.arange(model.n_classes), alloc)


def class_ids_for_labels(model: GenerativeModel, labels: Sequence[str]) -> list[int]:
    """Map original label values (as written in the data files, e.g. ``"1"``) to class ids.

    Raises:
        ConfigError: a label the training data does not have (the known labels are listed).
    """
    known = model.label_values or [str(k) for k in range(model.n_classes)]
    canon = [str(v) for v in normalise_labels(known).tolist()]
    ids = []
    for label in labels:
        wanted = str(normalise_labels([label]).tolist()[0])
        if wanted not in canon:
            known_list = ", ".join(canon)
            raise ConfigError(f"class {label!r} is not a label of the training data (labels: {known_list})")
        ids.append(canon.index(wanted))
    return ids


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


def decoding_prior(model: GenerativeModel) -> torch.nn.Module:
    """The prior as sampling runs it: in eval mode, and under a low-precision ``precision`` a copy cast to
    that dtype, so that its matmuls (and norms) run natively in bf16 (the model's own prior is untouched)."""
    prior = model.prior.eval()
    amp = autocast_dtype(model.precision, model.device)
    return prior if amp is None else copy.deepcopy(prior).to(amp)


def iter_samples(
    model: GenerativeModel,
    n: int,
    classes: Classes = None,
    *,
    decoding: Decoding | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
    denormalize: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``n`` samples in batches of at most ``batch_size``: (x (b, C, L) float32, y (b,) or None), CPU.

    Args:
        model: the generator (:func:`ncvqvae.stage2.load_generator`).
        n: number of series.
        classes: ``None`` (unconditional), one class id, or ``n`` class ids (see :func:`class_proportional`).
        decoding: steps T, temperature, choice temperature and guidance scale (``None`` = the run's,
            ``model.decoding``; change one option with ``model.decoding.override(guidance=2.0)``).
        generator: source of every random draw, ideally on the model's device; ``None`` seeds a fresh
            one from PyTorch's global RNG (pass one for reproducible samples).
        batch_size: sequences decoded at once (memory is bounded by one batch).
        denormalize: map the series back to the data's original scale (undo the global normalisation).
    """
    ids = resolve_classes(model, n, classes)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    device = model.device
    if generator is None:
        generator = make_generator(int(torch.randint(0, 2**62, ())), device)
    prior, null = decoding_prior(model), model.prior.null_class
    model.tokenizer.eval()
    decoding = model.decoding if decoding is None else decoding
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        y = ids[start : start + size] if ids is not None else None
        with torch.inference_mode():
            batch_classes = y.to(device) if y is not None else torch.full((size,), null, device=device)
            tokens = decode_tokens(prior, batch_classes, decoding=decoding, generator=generator)  # (b, N)
            with autocast(model.precision, device):  # the decoder's convolutions; the ISTFT in fp32
                x = model.decode(tokens).float()  # (b, C, L)
            if denormalize:
                x = model.denormalize(x)
        yield x.cpu(), y


def sample(
    model: GenerativeModel,
    n: int,
    classes: Classes = None,
    *,
    decoding: Decoding | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 512,
    denormalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draw ``n`` synthetic series (all in memory; stream with :func:`iter_samples` for large ``n``).

    Args: as :func:`iter_samples`.

    Returns:
        x: float32 (n, C, L) on the CPU; y: LongTensor (n,) of class ids, or ``None`` (unconditional).
    """
    xs, ys = [], []
    stream = iter_samples(
        model,
        n,
        classes,
        decoding=decoding,
        generator=generator,
        batch_size=batch_size,
        denormalize=denormalize,
    )
    for x, y in stream:
        xs.append(x)
        if y is not None:
            ys.append(y)
    return torch.cat(xs), (torch.cat(ys) if ys else None)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------


def write_samples(
    path: str | os.PathLike[str],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    *,
    label_values: Sequence[Any] | None = None,
    fmt: str | None = None,
    name: str | None = None,
) -> int:
    """Stream batches of samples into one file, atomically; the format follows the extension.

    Args:
        path: ``.npz``, ``.npy``, ``.tsv``, ``.csv``, ``.ts`` or ``.arff`` (see the module docstring).
        batches: (x (b, C, L), y (b,) class ids or ``None``), e.g. from :func:`iter_samples`.
        label_values: original label of each class id, written instead of the ids (``None`` = the ids).
        fmt: force a format regardless of the extension.
        name: dataset name for ``.ts``/``.arff`` headers (default: the file stem).

    Returns:
        The number of series written.

    Raises:
        DataError: the format cannot hold the samples (labels missing for ``.tsv``, several channels
            in a univariate format, labels for ``.npy``), or a sample is not finite.
    """
    path = Path(path)
    lookup = np.asarray([str(v) for v in label_values], dtype=object) if label_values else None
    labelled = ((_finite(x.numpy(), path), _labels(y, lookup)) for x, y in batches)
    n = write_series_batches(path, labelled, fmt=fmt, name=name or path.stem)
    log.info("wrote %d samples to %s", n, path)
    return n


def _finite(x: np.ndarray, path: Path) -> np.ndarray:
    if not np.isfinite(x).all():  # a file format would store NaN as a missing value
        raise DataError(f"{path}: refusing to write non-finite samples (the generator produced NaN/inf)")
    return x


def _labels(y: torch.Tensor | None, lookup: np.ndarray | None) -> np.ndarray | None:
    if y is None:
        return None
    ids = y.cpu().numpy()
    return lookup[ids] if lookup is not None else ids
