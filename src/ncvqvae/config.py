"""Frozen dataclass configs with the thesis defaults, YAML files and dotted overrides.

A run is described by one :class:`RunConfig`. Every field has the value the thesis runs used
(``../shared/SPEC.md``), so ``RunConfig()`` *is* the faithful setting. Named experiments are YAML files
(presets shipped in ``ncvqvae/presets``), and the CLI's ``--set stage1.lr=3e-4`` overrides single
fields. Unknown keys and values of the wrong type are rejected with the file and field named.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ncvqvae.errors import ConfigError

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# What a field changes
# --------------------------------------------------------------------------------------------------

# A field changes every result of its section and of what comes after it, unless its metadata says
# otherwise: ``field(metadata={"result": ...})`` names the only thing it changes. :func:`result_fields`
# reads these tags; the stages, the evaluation and the main job decide with it what must match.
RESULT = "result"  # the metadata key
NO_RESULT = "none"  # where and how a run runs, what it is called, how often it logs: no result
FIGURES = "figures"  # which pictures the evaluation draws: no number
STOP = "stop"  # where training stops, not its schedule: a stage continues (or stops) under another value
SAMPLING = "sampling"  # how samples are decoded: the generation numbers, not the trained prior


def _changes(what: str, default: Any) -> Any:
    """A dataclass field with ``default`` whose only effect is ``what`` (one of the tags above)."""
    return field(default=default, metadata={RESULT: what})


# --------------------------------------------------------------------------------------------------
# The configs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Which data, and how it is prepared (SPEC §2)."""

    dataset: str = "gen-twopatterns"  # a UCR/UEA name, a built-in generator (gen-...), or a path
    # an existing UCR archive root, searched first (also NCVQVAE_DATA_DIR): where the files are, not which
    data_dir: str | None = _changes(NO_RESULT, None)
    normalization: str = "global"  # "global" (one scalar mean/std from train), "per_series" or "none"
    length_policy: str = "pad"  # variable-length series: "pad" (NaN→0 after scaling), "resample", "error"
    layout: str = "nct"  # axis order of .npy/.npz input: "nct", "ntc" or "nt"
    val_fraction: float = 0.0  # >0 carves a seeded stratified validation split from train (never test)
    generator_seed: int = 0  # seed of the built-in generators (gen-twopatterns, gen-cbf, ...)
    n_train: int | None = None  # built-in generators only (other data is used whole): the train size
    n_test: int | None = None  # built-in generators only (other data is used whole): the test size


@dataclass(frozen=True)
class AugmentationConfig:
    """The augmented view of NC-VQVAE (SPEC §3); applied as a list, left to right."""

    names: tuple[str, ...] = ("warp",)  # any of "warp", "slice", "gauss"
    window_ratio: float = 0.4  # warp: window length = round(ratio * L)
    warp_scale_min: float = 0.9  # warp: window resampled by s ~ U(min, max)
    warp_scale_max: float = 2.0
    amplitude_std: float = 0.2  # warp: multiply the series by 1 + N(0, std)
    n_cuts: int = 3  # slice: cut points drawn with replacement, segments shuffled
    gauss_std: float = 0.05  # gauss: i.i.d. N(0, std) per time step


@dataclass(frozen=True)
class Stage1Config:
    """The STFT VQ-VAE tokenizer and its optional SSL branch (SPEC §3)."""

    method: str = "vibcreg"  # "baseline" (plain VQ-VAE), "barlowtwins" or "vibcreg"
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    # network
    n_fft: int = 8  # STFT: Hann window of n_fft, hop n_fft // 4, centred
    hidden_dim: int = 64  # encoder/decoder width = code dimension
    n_res_blocks: int = 4
    downsampled_width: int = 8  # target token-grid width (sets the downsample rate)
    dropout: float = 0.0
    # vector quantizer
    codebook_size: int = 32
    vq_decay: float = 0.9  # EMA decay of the codebook
    vq_eps: float = 1e-5  # Laplace smoothing of the EMA cluster sizes
    commitment_weight: float = 1.0
    # NC branch
    aug_recon_weight: float = 0.2  # weight of the augmented view's (unquantised) reconstruction
    projector_dim: int = 4096  # 3-layer projector width after the 128-d avg‖max pooled head
    ssl_weight: float | None = None  # None = the method's default (Barlow Twins 1.0, VIbCReg 0.01)
    barlow_lambda: float = 0.005  # Barlow Twins off-diagonal weight
    vibcreg_sim: float = 25.0  # VIbCReg λ (invariance)
    vibcreg_var: float = 25.0  # VIbCReg μ (variance)
    vibcreg_cov: float = 100.0  # VIbCReg ν (normalised covariance)
    iternorm_groups: int = 64
    iternorm_iters: int = 5
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int = 128
    epochs: int = 1000
    steps: int | None = None  # the budget in optimiser steps instead of epochs (cosine over these steps)
    warmup_steps: int = 0  # linear lr warm-up before the cosine (not in SPEC; for short budgets)
    # stop early after this many optimiser steps (schedule unchanged)
    max_steps: int | None = _changes(STOP, None)
    # bookkeeping
    log_every: int = _changes(NO_RESULT, 10)  # steps between JSON-lines metric records
    # steps between periodic checkpoints (a final one is always written)
    checkpoint_every: int = _changes(NO_RESULT, 500)
    # epochs between probe/reconstruction evaluations (None = end only)
    eval_every: int | None = _changes(NO_RESULT, None)


@dataclass(frozen=True)
class Decoding:
    """The MaskGIT decoding options (SPEC §4): what turns a trained prior into samples.

    One object for the config (:attr:`Stage2Config.decoding` gathers its ``stage2.*`` YAML keys), the
    generator's defaults (:class:`ncvqvae.stage2.GenerativeModel`), the sampler
    (:func:`ncvqvae.sampling.iter_samples`, :func:`ncvqvae.maskgit.decode_tokens`) and the evaluation.
    """

    steps: int = 10  # T, the number of decoding steps (YAML key stage2.decoding_steps)
    temperature: float = 1.0  # token sampling temperature (0 = greedy)
    choice_temperature: float = 4.0  # Gumbel noise scale of the re-masking confidences, annealed to 0
    guidance: float = 1.0  # classifier-free guidance scale s (1 = plain conditional, one pass a step)

    def override(
        self,
        *,
        steps: int | None = None,
        temperature: float | None = None,
        choice_temperature: float | None = None,
        guidance: float | None = None,
    ) -> Decoding:
        """A copy with the options given (not ``None``) replaced, e.g. from optional CLI flags."""
        given = {"steps": steps, "temperature": temperature, "choice_temperature": choice_temperature}
        changes = {k: v for k, v in {**given, "guidance": guidance}.items() if v is not None}
        return dataclasses.replace(self, **changes)


# The Stage2Config field (YAML key under ``stage2``) of each Decoding option.
DECODING_KEYS = {
    "steps": "decoding_steps",
    "temperature": "temperature",
    "choice_temperature": "choice_temperature",
    "guidance": "guidance",
}
_DECODING = Decoding()


@dataclass(frozen=True)
class Stage2Config:
    """The MaskGIT prior over the frozen tokenizer (SPEC §4)."""

    variant: str = "token"  # "token", "codebook", or "thesis" (token for baseline, codebook for NC)
    width: int = 256
    depth: int = 4
    heads: int = 2
    # width of one attention head: the reference's transformer library (x-transformers) uses 64, so its
    # 2 heads attend in 128 dimensions inside the 256-wide stream (SPEC is silent; 0 = width // heads)
    head_dim: int = 64
    ff_mult: int = 1
    dropout: float = 0.0
    masking: str = "maskgit"  # "maskgit" (mask ⌈cos(πt/2)·N⌉, loss on masked) or "legacy"
    class_dropout: float = 0.2  # p of replacing the class by the null class (classifier-free guidance)
    tokenize_temperature: float = 1.0  # stochastic VQ while training the prior (τ); 0 = nearest code
    # decoding: the Decoding options, flat under their YAML keys (DECODING_KEYS); see `decoding`
    decoding_steps: int = _changes(SAMPLING, _DECODING.steps)
    temperature: float = _changes(SAMPLING, _DECODING.temperature)
    choice_temperature: float = _changes(SAMPLING, _DECODING.choice_temperature)
    guidance: float = _changes(SAMPLING, _DECODING.guidance)
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int = 256
    epochs: int = 1000
    steps: int | None = None  # the budget in optimiser steps instead of epochs (cosine over these steps)
    warmup_steps: int = 0  # linear lr warm-up before the cosine (not in SPEC; for short budgets)
    max_steps: int | None = _changes(STOP, None)
    log_every: int = _changes(NO_RESULT, 10)
    checkpoint_every: int = _changes(NO_RESULT, 500)

    @property
    def decoding(self) -> Decoding:
        """The decoding options these fields hold (the generator's defaults when sampling)."""
        return Decoding(**{option: getattr(self, key) for option, key in DECODING_KEYS.items()})


@dataclass(frozen=True)
class EvaluationConfig:
    """Evaluator, FID / IS / CAS protocol and probes (SPEC §5)."""

    # supervised FCN evaluator (trained once per dataset and cached)
    evaluator_epochs: int = 1000
    evaluator_steps: int | None = None  # the budget in optimiser steps instead of epochs
    # a stored evaluator (a folder with fcn.pt and info.json, as `ncvqvae evaluator export` writes) used
    # instead of the cache, so that runs on other machines or sessions share one evaluator; it must have
    # been trained on the same prepared data (checked by hash). None = the cache (train when missing).
    evaluator_path: str | None = None
    evaluator_lr: float = 1e-3
    evaluator_weight_decay: float = 1e-5
    evaluator_batch_size: int = 256
    # FID / IS
    n_samples: int | None = None  # None = max(n_test, 256) unconditional samples, the first n_test used
    is_splits: int = 10
    bootstrap: int = 200  # bootstrap resamples for the 95% intervals of FID and IS (0 = off)
    # CAS
    cas: bool = True
    cas_min_samples: int = 1000
    cas_epochs: int | None = None  # None = evaluator_epochs
    cas_steps: int | None = None  # the budget in optimiser steps instead of epochs (None = cas_epochs)
    cas_mode: str = "clean"  # "clean" (final test accuracy) or "legacy" (EMA of batch accuracies)
    # beyond the thesis (issue 17; docs/evaluation.md): the cheap ones on, the expensive ones off
    kid: bool = True  # KID (unbiased MMD², cubic kernel) with its subset interval, next to FID and cFID
    kid_subsets: int = 100  # subsets per KID
    kid_subset_size: int = 1000  # series per side and subset, at most half the smaller set
    prdc: bool = True  # precision / recall / density / coverage (Naeem et al. 2020), overall and per class
    prdc_k: int = 5  # the k of the k-NN balls
    memorisation: bool = True  # nearest-training-series distances of samples vs real test series
    memorisation_quantile: float = 0.05  # threshold = this quantile of the test-to-train distances
    minirocket_fid: bool = False  # evaluator-free FID on MiniRocket features (needs aeon: [minirocket])
    minirocket_kernels: int = 10000  # MiniRocket n_kernels (kernel seed 0, one feature space per dataset)
    utility: bool = False  # FCNs on real / real + jitter & window warp / real + synthetic, on real test
    utility_epochs: int | None = None  # None = cas_epochs, then evaluator_epochs
    # the budget in optimiser steps instead of epochs (None: cas_steps when utility_epochs is None, else
    # epochs); equal steps give the three FCNs equal training although their sets differ in size
    utility_steps: int | None = None
    utility_ratio: float = 1.0  # synthetic (and augmented) series added per real train series
    # probes
    knn_k: int = 5
    svm_c: float = 1.0
    # sampling for evaluation
    sample_batch_size: int = _changes(NO_RESULT, 512)  # series decoded at once: memory (not re-scored for)
    figures: bool = _changes(FIGURES, True)


@dataclass(frozen=True)
class RunConfig:
    """One experiment cell: a dataset, a stage-1 method and augmentation, a seed, and the budgets."""

    seed: int = 0
    device: str = _changes(NO_RESULT, "auto")  # "auto" (cuda if present), "cpu", "cuda", "cuda:1", ...
    # every network (stage 1, stage 2, evaluator, CAS, features, sampling): "auto" = bf16 autocast where
    # the device has native bf16 (CUDA cc ≥ 8, AMX-BF16/AVX512-BF16 CPUs), else fp32; "fp32"; "bf16"
    precision: str = "auto"
    preset: str | None = _changes(NO_RESULT, None)  # the preset this config was built from (for the record)
    tracker: str | None = _changes(NO_RESULT, None)  # None, "mlflow", "wandb" or "tensorboard"
    progress: bool = _changes(NO_RESULT, True)  # progress bars
    data: DataConfig = field(default_factory=DataConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


# --------------------------------------------------------------------------------------------------
# Dict / YAML round trip
# --------------------------------------------------------------------------------------------------


def to_dict(cfg: Any) -> dict[str, Any]:
    """Turn a config dataclass into plain JSON/YAML-able dicts (tuples become lists)."""

    def convert(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        return value

    return convert(cfg)


@functools.cache
def result_tag(name: str) -> str | None:
    """The ``result`` tag of the dotted field ``name`` of a :class:`RunConfig` (``"stage2.guidance"`` →
    ``"sampling"``); ``None`` for a field that changes every result, and for a name no field has."""
    node: Any = RunConfig()
    tag = None
    for part in name.split("."):
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        if part not in fields:
            return None
        tag, node = fields[part].metadata.get(RESULT), getattr(node, part)
    return tag


def result_fields(
    cfg: RunConfig | Mapping[str, Any],
    *,
    ignoring: Iterable[str] = (NO_RESULT,),
    sections: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The flat dotted fields (``{"stage1.lr": 1e-3, ...}``) of a run config that change a result.

    Args:
        cfg: a :class:`RunConfig`, or its :func:`to_dict` form (e.g. as a finished run recorded it; a
            key of an older config is kept, so it differs from any current config).
        ignoring: leave out the fields tagged with one of these (:data:`NO_RESULT`, :data:`FIGURES`,
            :data:`STOP`, :data:`SAMPLING`); a stage, say, ignores what does not change its weights.
        sections: only these top-level fields and sections (``("seed", "data", "stage1")``); all when
            ``None``.
    """
    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    wanted, skip = None if sections is None else set(sections), set(ignoring)
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif result_tag(prefix) not in skip:
            flat[prefix] = value

    for key, value in data.items():
        if wanted is None or key in wanted:
            walk(key, value)
    return flat


def from_dict(cls: type[T], data: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build ``cls`` from nested dicts, rejecting unknown keys and ill-typed values.

    Args:
        cls: a (frozen) config dataclass.
        data: nested dicts; missing keys keep their defaults.
        source: where ``data`` came from, named in error messages (a file name, "--set").
    """
    data = data or {}
    if cls is RunConfig:
        data = _migrate(data)
    return _build(cls, data, source, prefix="")


# Keys of older config files and the field that holds their value now; a saved run keeps loading.
_MOVED_KEYS = {("stage2", "precision"): ("precision",)}


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Move keys of older run configs to where they live now (:data:`_MOVED_KEYS`)."""
    data = dict(data)
    for (section, key), (target,) in _MOVED_KEYS.items():
        part = data.get(section)
        if isinstance(part, dict) and key in part:
            part = dict(part)
            value = part.pop(key)
            data[section] = part
            data.setdefault(target, value)
    return data


def _build(cls: type[T], data: Any, source: str, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: field '{prefix.rstrip('.') or '<root>'}' must be a mapping, got {data!r}"
        )
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"known keys of '{prefix.rstrip('.') or cls.__name__}': {', '.join(sorted(names))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, source, prefix + name)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        # A YAML section left empty (``stage1:`` with every line commented out) keeps the defaults.
        return _build(tp, {} if value is None else value, source, key + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, source, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{source}: field '{key}' expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: field '{key}' expected a list, got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_coerce(item_tp, v, source, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: field '{key}' expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{source}: field '{key}' expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # PyYAML follows YAML 1.1, where ``3e-4`` (no dot) is a string, not a float
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{source}: field '{key}' expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{source}: field '{key}' expected a string, got {value!r}")
    return value


def _type_name(tp: Any) -> str:
    return str(tp).replace("typing.", "").replace("<class '", "").replace("'>", "")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into nested dicts, with the file named in any error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields at the top level")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Turn ``["stage1.lr=3e-4", "stage1.augmentation.names=[warp,gauss]"]`` into nested dicts.

    Values are parsed as YAML scalars/lists, so ``1e-3``, ``true``, ``null`` and ``[a, b]`` work.
    """
    values: list[tuple[str, Any]] = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set: empty key in {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"--set: cannot parse the value of {key!r} ({err})") from err
        values.append((key, value))
    return nest(values, source="--set")


def nest(values: Iterable[tuple[str, Any]] | Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """Turn dotted names and values into nested dicts: ``{"stage1.lr": 3e-4}`` → ``{"stage1": {"lr": 3e-4}}``.

    The values are kept as they are (no parsing), so a typed CLI flag reaches the config as typed.

    Args:
        values: (dotted name, value) pairs, or a mapping of them.
        source: named in the error when two names conflict (``--set``, "command-line flags").
    """
    nested: dict[str, Any] = {}
    for key, value in values.items() if isinstance(values, Mapping) else values:
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: {key!r} conflicts with another override")
        if isinstance(node.get(parts[-1]), dict) and not isinstance(value, dict):
            raise ConfigError(f"{source}: {key!r} conflicts with another override")
        node[parts[-1]] = value
    return nested


def presets_dir() -> Path:
    """The folder of the presets shipped with the package."""
    return Path(__file__).parent / "presets"


def list_presets() -> dict[str, str]:
    """Map preset name → the first comment line of its YAML file (its description)."""
    out = {}
    for path in sorted(presets_dir().glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        out[path.stem] = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
    return out


def load_preset(name: str) -> dict[str, Any]:
    """The nested dict of a shipped preset (``quick``, ``thesis``, ...)."""
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_presets()) or "none"
        raise ConfigError(f"unknown preset {name!r}; known presets: {known}")
    data = load_yaml(path)
    data.setdefault("preset", name)
    return data


def resolve_config(
    *,
    preset: str | None = None,
    files: list[str | Path] | tuple[str | Path, ...] = (),
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig`: defaults ← base ← preset ← files ← ``fields`` ← ``--set`` overrides.

    Args:
        preset: a shipped preset name.
        files: YAML config files, applied in order.
        overrides: ``key=value`` strings whose values are parsed as YAML (the CLI's ``--set``).
        base: nested dicts below everything else (e.g. an existing run's config).
        fields: dotted name → value, used as given (the CLI's typed flags: ``--dataset "x #1.tsv"``
            stays ``"x #1.tsv"``; ``None`` values are left out).
    """
    data: dict[str, Any] = dict(base or {})
    if preset:
        data = merge(data, load_preset(preset))
        from_dict(RunConfig, data, source=f"preset {preset}")
    for path in files:
        file_data = load_yaml(path)
        from_dict(RunConfig, merge(data, file_data), source=str(path))
        data = merge(data, file_data)
    given = {k: v for k, v in (fields or {}).items() if v is not None}
    if given:
        data = merge(data, nest(given, source="command-line flags"))
        from_dict(RunConfig, data, source="command-line flags")
    if overrides:
        data = merge(data, parse_overrides(overrides))
    return from_dict(RunConfig, data, source="--set" if overrides else "config")


def replace(cfg: T, **changes: Any) -> T:
    """``dataclasses.replace`` with dotted names: ``replace(cfg, **{"stage1.epochs": 5})``."""
    data = to_dict(cfg)
    for dotted, value in changes.items():
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"replace: {dotted!r} does not name a field of {type(cfg).__name__}")
            node = node[part]
        node[parts[-1]] = to_dict(value) if dataclasses.is_dataclass(value) else value
    return from_dict(type(cfg), data, source="replace")
