"""Built-in synthetic datasets: TwoPatterns, CBF and SyntheticControl, regenerated from their formulas.

They are the offline default data of the package and the data of its tests. Each generator reproduces
the generating process of the UCR archive's dataset it imitates, at the archive's split sizes, with
every series z-normalised like the archive's files (sample standard deviation, ``ddof=1``):

- ``gen-twopatterns`` (Geurts 2001): 1000/4000 series of length 128, 4 classes drawn at random.
- ``gen-cbf`` (Saito 1994): cylinder, bell, funnel; 30/900 series of length 128, 3 classes drawn at
  random.
- ``gen-syntheticcontrol`` (Alcock & Manolopoulos 1999): 300/300 series of length 60, 6 classes, 50 per
  class per split.

The ``gen-`` prefix keeps a generator's name apart from the archive's dataset (``TwoPatterns``, in any
case, is the archive's files). Before that prefix the generators were called ``twopatterns``, ``cbf`` and
``syntheticcontrol``: :data:`LEGACY_NAMES` maps those names, for reading run directories made then.

All randomness comes from one ``numpy.random.Generator(PCG64)`` per split, both spawned from
``SeedSequence(seed)``: the same seed gives the same data, and the test split does not depend on the
train size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ncvqvae.data.dataset import Dataset
from ncvqvae.errors import DataError

# (n, rng, labels 0..K-1 (n,)) -> float array (n, L), before z-normalisation.
_Formula = Callable[[int, np.random.Generator, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GeneratorSpec:
    """What a built-in generator produces (the archive's dataset of the same name).

    Attributes:
        name: generator name (lower case, with the ``gen-`` prefix), e.g. ``"gen-twopatterns"``.
        catalog_name: the UCR archive's spelling, e.g. ``"TwoPatterns"``.
        n_train, n_test: the archive's split sizes (the defaults).
        length: series length.
        label_values: the archive's original labels, class id k ↦ ``label_values[k]``.
        class_names: what each class is.
        balanced: True when every class gets the same count per split (else classes drawn at random).
        reference: where the generating process comes from.
    """

    name: str
    catalog_name: str
    n_train: int
    n_test: int
    length: int
    label_values: tuple[int, ...]
    class_names: tuple[str, ...]
    balanced: bool
    reference: str

    @property
    def n_classes(self) -> int:
        return len(self.label_values)


def _z_normalise(x: np.ndarray) -> np.ndarray:
    """Per-series z-normalisation as in the archive's files (sample std, ddof=1). x: (n, L)."""
    std = x.std(axis=1, ddof=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


def _two_patterns(n: int, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """TwoPatterns (Geurts 2001), as inferred from the archive's TRAIN split.

    Each series holds two non-overlapping patterns; pattern i has total length l_i ~ U{16..32}, a first
    plateau of ceil(l_i/2) samples and a second of floor(l_i/2). "Up" is −5 then +5, "down" +5 then −5.
    Positions t1 ~ U{0..L−l1−l2−1}, t2 ~ U{t1+l1..L−l2−1}; every other sample is N(0, 1). Class ids
    0..3 (labels 1..4) are (first, second) = down-down, up-down, down-up, up-up.
    """
    length = 128
    lengths = rng.integers(16, 33, size=(n, 2))  # l1, l2 ~ U{16..32}
    l1, l2 = lengths[:, :1], lengths[:, 1:]  # (n, 1) each, broadcast against time
    t1 = rng.integers(0, length - l1 - l2)  # U{0 .. L − l1 − l2 − 1}
    t2 = rng.integers(t1 + l1, length - l2)  # U{t1 + l1 .. L − l2 − 1}
    # +1 for "up" (first plateau −5), −1 for "down" (first plateau +5); bit 0 = first, bit 1 = second.
    up1 = np.where(labels % 2 == 1, 1.0, -1.0)[:, None]
    up2 = np.where(labels >= 2, 1.0, -1.0)[:, None]
    x = rng.standard_normal((n, length))
    t = np.arange(length)[None, :]
    for start, total, sign in ((t1, l1, up1), (t2, l2, up2)):
        middle = start + (total + 1) // 2  # first plateau has ceil(l/2) samples
        x = np.where((t >= start) & (t < middle), -5.0 * sign, x)
        x = np.where((t >= middle) & (t < start + total), 5.0 * sign, x)
    return x


def _cylinder_bell_funnel(n: int, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Cylinder-Bell-Funnel (Saito 1994), length 128.

    a ~ U{16..32}, b − a ~ U{32..96}, η, ε(t) ~ N(0, 1); on a ≤ t ≤ b the series is (6 + η) times 1
    (cylinder), (t − a)/(b − a) (bell) or (b − t)/(b − a) (funnel), plus ε(t) everywhere.
    Hand-written: ``pyts.datasets.make_cylinder_bell_funnel`` implements the same process, but pyts
    pulls in numba, a heavy dependency for twenty lines of numpy.
    """
    length = 128
    a = rng.integers(16, 33, size=(n, 1))
    b = a + rng.integers(32, 97, size=(n, 1))
    eta = rng.standard_normal((n, 1))
    eps = rng.standard_normal((n, length))
    t = np.arange(1, length + 1)[None, :]  # Saito's time axis is t = 1..128
    inside = (t >= a) & (t <= b)
    ramp_up = (t - a) / (b - a)
    shape = np.select(
        [labels[:, None] == 0, labels[:, None] == 1], [np.ones_like(ramp_up), ramp_up], 1.0 - ramp_up
    )
    return (6.0 + eta) * inside * shape + eps


def _synthetic_control(n: int, rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Synthetic control charts (Alcock & Manolopoulos 1999), length 60.

    m = 30, s = 2, r(t) ~ U(−3, 3); normal m + r·s, plus per class: cyclic a·sin(2πt/T) with
    a, T ~ U(10, 15); increasing/decreasing trend ±g·t with g ~ U(0.2, 0.5); upward/downward shift
    ±x from t3 on, x ~ U(7.5, 20), t3 ~ U{20..40}. Class ids 0..5 = labels 1..6 in that order.
    """
    length, m, s = 60, 30.0, 2.0
    t = np.arange(length, dtype=float)[None, :]
    base = m + rng.uniform(-3.0, 3.0, size=(n, length)) * s
    # Every parameter is drawn for every series (vectorised); each class uses the ones it needs.
    amplitude = rng.uniform(10.0, 15.0, size=(n, 1))
    period = rng.uniform(10.0, 15.0, size=(n, 1))
    gradient = rng.uniform(0.2, 0.5, size=(n, 1))
    shift = rng.uniform(7.5, 20.0, size=(n, 1))
    t3 = rng.integers(20, 41, size=(n, 1))
    pattern = np.select(
        [labels[:, None] == k for k in range(6)],
        [
            np.zeros_like(base),
            amplitude * np.sin(2.0 * np.pi * t / period),
            gradient * t,
            -gradient * t,
            shift * (t >= t3),
            -shift * (t >= t3),
        ],
    )
    return base + pattern


_SPECS: dict[str, tuple[GeneratorSpec, _Formula]] = {
    "twopatterns": (
        GeneratorSpec(
            name="gen-twopatterns", catalog_name="TwoPatterns", n_train=1000, n_test=4000, length=128,
            label_values=(1, 2, 3, 4), class_names=("down-down", "up-down", "down-up", "up-up"),
            balanced=False, reference="Geurts 2001",
        ),
        _two_patterns,
    ),
    "cbf": (
        GeneratorSpec(
            name="gen-cbf", catalog_name="CBF", n_train=30, n_test=900, length=128,
            label_values=(1, 2, 3), class_names=("cylinder", "bell", "funnel"),
            balanced=False, reference="Saito 1994",
        ),
        _cylinder_bell_funnel,
    ),
    "syntheticcontrol": (
        GeneratorSpec(
            name="gen-syntheticcontrol", catalog_name="SyntheticControl", n_train=300, n_test=300, length=60,
            label_values=(1, 2, 3, 4, 5, 6),
            class_names=(
                "normal", "cyclic", "increasing trend", "decreasing trend", "upward shift", "downward shift",
            ),
            balanced=True, reference="Alcock & Manolopoulos 1999",
        ),
        _synthetic_control,
    ),
}


#: What marks a dataset name as a built-in generator's (``gen-twopatterns``).
PREFIX = "gen-"

#: The generators' names before the ``gen-`` prefix → their names now. Only for run directories and
#: configs written then (see :meth:`ncvqvae.training.RunDir.read_config`): today these names are the
#: archive's datasets.
LEGACY_NAMES: dict[str, str] = {key: PREFIX + key for key in _SPECS}


def names() -> tuple[str, ...]:
    """The built-in generator names (lower case, ``gen-`` prefix)."""
    return tuple(gen_spec.name for gen_spec, _ in _SPECS.values())


def _key(name: str) -> str | None:
    """The ``_SPECS`` key of a generator name (case-insensitive), or ``None``."""
    text = name.strip().lower()
    if not text.startswith(PREFIX):
        return None
    key = text[len(PREFIX):]
    return key if key in _SPECS else None


def spec(name: str) -> GeneratorSpec | None:
    """The spec of generator ``name`` (``gen-twopatterns``, any case), or ``None`` for other names.

    A name without the ``gen-`` prefix is never a generator: ``TwoPatterns`` is the archive's dataset.
    """
    key = _key(name)
    return _SPECS[key][0] if key else None


def is_generator_name(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether ``load_dataset(name_or_path)`` runs a generator: a ``gen-`` name that is not a path."""
    text = os.fspath(name_or_path)
    return spec(text) is not None and not Path(text).expanduser().exists()


def reference_name(name: str) -> str:
    """The archive dataset whose published numbers ``name`` is compared with.

    A generator's is the dataset it imitates (``gen-twopatterns`` → ``TwoPatterns``); any other name is
    its own.
    """
    found = spec(name)
    return found.catalog_name if found is not None else name


def _labels(n: int, n_classes: int, balanced: bool, rng: np.random.Generator) -> np.ndarray:
    """Class ids (n,): equal counts (±1) in random order when balanced, else uniform draws."""
    if balanced:
        return rng.permutation(np.arange(n) % n_classes)
    return rng.integers(0, n_classes, size=n)


def _split(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    gen_spec, formula = _SPECS[name]
    y = _labels(n, gen_spec.n_classes, gen_spec.balanced, rng)
    x = _z_normalise(formula(n, rng, y))
    return x.astype(np.float32)[:, None, :], y.astype(np.int64)  # (n, 1, L), (n,)


def generate(name: str, *, seed: int = 0, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """Generate a built-in dataset.

    Args:
        name: ``"gen-twopatterns"``, ``"gen-cbf"`` or ``"gen-syntheticcontrol"`` (case-insensitive);
            the bare ``"twopatterns"``, ``"cbf"``, ``"syntheticcontrol"`` too, since this function
            only generates (no archive dataset can be meant).
        seed: the seed of both splits; the same seed gives the same data.
        n_train: train size (default: the archive's); 0 or more.
        n_test: test size (default: the archive's); 0 gives no test split.

    Returns:
        A :class:`~ncvqvae.data.dataset.Dataset` with X_train (n_train, 1, L) float32, labels 0..K-1,
        ``label_values`` the archive's original labels, ``name`` the generator's name
        (``"gen-twopatterns"``), ``source="generator:twopatterns"`` and ``metadata["regenerated"] = True``.

    Raises:
        DataError: for an unknown name or a negative size.
    """
    key = _key(name) or name.strip().lower()
    if key not in _SPECS:
        raise DataError(f"unknown generator {name!r}: expected one of {', '.join(names())}")
    gen_spec = _SPECS[key][0]
    n_train = gen_spec.n_train if n_train is None else int(n_train)
    n_test = gen_spec.n_test if n_test is None else int(n_test)
    if n_train < 1 or n_test < 0:
        raise DataError(
            f"generator {gen_spec.name!r}: n_train must be ≥ 1 and n_test ≥ 0, got {n_train} and {n_test}"
        )
    # Independent streams per split, so the test data do not change with n_train.
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    x_train, y_train = _split(key, n_train, np.random.Generator(np.random.PCG64(train_seq)))
    x_test, y_test = _split(key, n_test, np.random.Generator(np.random.PCG64(test_seq)))
    return Dataset(
        name=gen_spec.name,
        X_train=x_train,
        y_train=y_train,
        X_test=x_test if n_test > 0 else None,
        y_test=y_test if n_test > 0 else None,
        label_values=gen_spec.label_values,
        class_names=gen_spec.class_names,
        source=f"generator:{key}",
        metadata={
            "regenerated": True,
            "seed": int(seed),
            "catalog_name": gen_spec.catalog_name,
            "resized": (n_train, n_test) != (gen_spec.n_train, gen_spec.n_test),
            "reference": gen_spec.reference,
            "format": "generator",
        },
    )
