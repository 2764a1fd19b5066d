"""Tests of the config dataclasses, YAML files, presets and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ncvqvae.config import (
    DECODING_KEYS,
    FIGURES,
    NO_RESULT,
    SAMPLING,
    STOP,
    AugmentationConfig,
    DataConfig,
    Decoding,
    EvaluationConfig,
    RunConfig,
    Stage1Config,
    Stage2Config,
    from_dict,
    list_presets,
    load_preset,
    load_yaml,
    parse_overrides,
    replace,
    resolve_config,
    result_fields,
    result_tag,
    to_dict,
)
from ncvqvae.errors import ConfigError


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_defaults_are_the_thesis_values() -> None:
    cfg = RunConfig()
    assert cfg.stage1.augmentation == AugmentationConfig()
    assert (cfg.stage1.lr, cfg.stage1.batch_size, cfg.stage1.codebook_size) == (1e-3, 128, 32)
    assert (cfg.stage2.batch_size, cfg.stage2.width, cfg.stage2.class_dropout) == (256, 256, 0.2)
    assert cfg.data.normalization == "global" and cfg.data.val_fraction == 0.0


def test_round_trip_through_dicts_and_yaml() -> None:
    cfg = replace(RunConfig(), **{"stage1.augmentation.names": ("slice", "gauss"), "data.n_train": 12})
    data = to_dict(cfg)
    assert data["stage1"]["augmentation"]["names"] == ["slice", "gauss"]  # plain lists, YAML-able
    assert from_dict(RunConfig, data) == cfg
    assert from_dict(RunConfig, yaml.safe_load(yaml.safe_dump(data))) == cfg
    assert from_dict(RunConfig, None) == RunConfig()


def test_configs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunConfig().seed = 3  # type: ignore[misc]


def test_unknown_key_names_key_and_source() -> None:
    with pytest.raises(ConfigError, match=r"my.yaml: unknown key\(s\) stage1\.augmentation\.jitter") as err:
        from_dict(RunConfig, {"stage1": {"augmentation": {"jitter": 1}}}, source="my.yaml")
    assert "n_cuts" in str(err.value)  # and lists the known keys


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"seed": "zero"}, "'seed' expected an integer"),
        ({"seed": 1.5}, "'seed' expected an integer"),
        ({"seed": True}, "'seed' expected an integer"),
        ({"progress": "yes please"}, "'progress' expected true/false"),
        ({"stage1": {"lr": "fast"}}, "'stage1.lr' expected a number"),
        ({"stage1": {"ssl_weight": "heavy"}}, "'stage1.ssl_weight' expected"),
        ({"stage1": {"augmentation": {"names": 3}}}, "'stage1.augmentation.names' expected a list"),
        ({"stage1": 5}, "'stage1' must be a mapping"),
        ({"data": {"dataset": ["a"]}}, "'data.dataset' expected a string"),
    ],
)
def test_type_errors_name_the_field(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        from_dict(RunConfig, data, source="src")


def test_coercions() -> None:
    cfg = from_dict(
        RunConfig,
        {
            "seed": 2.0,  # integral float → int
            "stage1": {"lr": 1, "ssl_weight": "1e-2", "augmentation": {"names": "warp,gauss"}},
            "data": {"dataset": 123, "n_train": None},
            "stage2": None,  # an empty YAML section keeps the defaults
        },
    )
    assert cfg.seed == 2 and isinstance(cfg.seed, int)
    assert cfg.stage1.lr == 1.0 and isinstance(cfg.stage1.lr, float)
    assert cfg.stage1.ssl_weight == 0.01
    assert cfg.stage1.augmentation.names == ("warp", "gauss")
    assert cfg.data.dataset == "123" and cfg.data.n_train is None
    assert cfg.stage2 == RunConfig().stage2


def test_dotted_overrides_with_lists_null_and_exponents() -> None:
    nested = parse_overrides(
        ["stage1.lr=3e-4", "stage1.augmentation.names=[slice, gauss]", "data.n_train=null", "progress=false"]
    )
    assert nested == {
        "stage1": {"lr": "3e-4", "augmentation": {"names": ["slice", "gauss"]}},
        "data": {"n_train": None},
        "progress": False,
    }
    cfg = resolve_config(
        overrides=["stage1.lr=3e-4", "stage1.augmentation.names=[]", "stage1.ssl_weight=null"]
    )
    assert cfg.stage1.lr == 3e-4  # YAML 1.1 reads 3e-4 as a string; the float field still accepts it
    assert cfg.stage1.augmentation.names == ()
    assert cfg.stage1.ssl_weight is None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["stage1.lr"], "expected key=value"),
        (["=3"], "empty key"),
        (["stage1=3", "stage1.lr=1"], "conflicts"),
        (["stage1.lr=1", "stage1=3"], "conflicts"),
        (["stage1.lr=[1"], "cannot parse"),
    ],
)
def test_bad_overrides(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_overrides(overrides)


def test_unknown_override_names_set_as_source() -> None:
    with pytest.raises(ConfigError, match=r"--set: unknown key\(s\) stage1\.learning_rate"):
        resolve_config(overrides=["stage1.learning_rate=1"])


def test_presets_load_and_validate() -> None:
    presets = list_presets()
    assert {"smoke", "quick", "thesis"} <= set(presets)
    assert all(presets.values())  # every preset has a description line
    for name in presets:
        cfg = resolve_config(preset=name)
        assert cfg.preset == name
    smoke = resolve_config(preset="smoke")
    assert smoke.stage1.max_steps == 3 and smoke.stage2.width == 32
    assert resolve_config(preset="thesis").stage1.epochs == 1000
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known presets: .*smoke"):
        load_preset("nope")


def test_resolve_config_precedence(tmp_path: Path) -> None:
    """defaults ← base ← preset ← files (in order) ← --set."""
    first = write(tmp_path, "a.yaml", {"stage1": {"epochs": 7, "lr": 0.5, "batch_size": 4}, "seed": 1})
    second = write(tmp_path, "b.yaml", {"stage1": {"lr": 0.25}})
    cfg = resolve_config(
        base={"stage1": {"epochs": 99, "hidden_dim": 16}, "stage2": {"depth": 9}},
        preset="smoke",
        files=[first, second],
        overrides=["stage1.batch_size=8"],
    )
    assert cfg.stage2.depth == 9  # base survives where nothing else speaks
    assert cfg.stage1.hidden_dim == 16
    assert cfg.stage1.max_steps == 3  # preset
    assert cfg.stage1.epochs == 7  # file beats base and preset (smoke says 1)
    assert cfg.stage1.lr == 0.25  # later file beats earlier file
    assert cfg.stage1.batch_size == 8  # --set beats files
    assert cfg.stage1.projector_dim == 64 and cfg.stage1.n_fft == 8  # preset, then defaults
    assert cfg.seed == 1


def test_bad_file_is_named(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", {"stage1": {"epochz": 3}})
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key\(s\) stage1\.epochz"):
        resolve_config(files=[bad])
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(write(tmp_path, "broken.yaml", "stage1: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping of config fields"):
        load_yaml(write(tmp_path, "list.yaml", "- 1\n- 2\n"))
    assert load_yaml(write(tmp_path, "empty.yaml", "")) == {}


def test_replace_with_dotted_names() -> None:
    cfg = replace(RunConfig(), **{"stage1.epochs": 5, "seed": 4, "data": DataConfig(dataset="gen-cbf")})
    assert (cfg.stage1.epochs, cfg.seed, cfg.data.dataset) == (5, 4, "gen-cbf")
    assert replace(Stage1Config(), lr=0.1).lr == 0.1
    with pytest.raises(ConfigError, match="stage9.epochs"):
        replace(RunConfig(), **{"stage9.epochs": 5})
    with pytest.raises(ConfigError, match="unknown key"):
        replace(RunConfig(), **{"stage1.epochz": 5})


def test_every_field_is_documented() -> None:
    """docs/configuration.md has a table row for every field of every config section (not sections)."""
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    sections = [RunConfig, DataConfig, AugmentationConfig, Stage1Config, Stage2Config, EvaluationConfig]
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in sections
        for f in dataclasses.fields(cls)
        if f"| `{f.name}` |" not in doc and not dataclasses.is_dataclass(getattr(cls(), f.name))
    ]
    assert not missing, f"document these fields in docs/configuration.md: {missing}"


def test_decoding_is_the_stage2_decoding_fields() -> None:
    """One Decoding for config, sampler and evaluation; the YAML keys of old runs stay where they were."""
    assert dataclasses.asdict(Stage2Config().decoding) == dataclasses.asdict(Decoding())
    assert set(DECODING_KEYS) == {f.name for f in dataclasses.fields(Decoding)}
    for option, key in DECODING_KEYS.items():  # the same defaults in both places
        assert getattr(Stage2Config(), key) == getattr(Decoding(), option), key
    old_run = {"stage2": {"decoding_steps": 7, "temperature": 0.8, "choice_temperature": 2, "guidance": 2}}
    loaded = from_dict(RunConfig, old_run)
    assert loaded.stage2.decoding == Decoding(steps=7, temperature=0.8, choice_temperature=2.0, guidance=2.0)
    assert to_dict(loaded)["stage2"]["decoding_steps"] == 7 and "decoding" not in to_dict(loaded)["stage2"]
    assert replace(loaded, **{"stage2.guidance": 3.0}).stage2.decoding.guidance == 3.0


def test_decoding_override_replaces_only_what_is_given() -> None:
    base = Decoding(steps=7, temperature=0.8)
    assert base.override() == base
    assert base.override(steps=None, guidance=2.0) == Decoding(steps=7, temperature=0.8, guidance=2.0)
    assert base.override(temperature=0.0, choice_temperature=0.0).temperature == 0.0  # 0 is a value
    assert base.override(choice_temperature=0.0).choice_temperature == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.steps = 3  # type: ignore[misc]


# The hand-kept lists that the field tags replaced (stage1.py, stage2.py, experiments/pipeline.py and the
# evaluation's settings hash): the fields each left out of its comparison.
OLD_STAGE1 = {"stage1.log_every", "stage1.checkpoint_every", "stage1.eval_every", "stage1.max_steps"}
OLD_STAGE1 |= {"data.data_dir"}
OLD_STAGE2 = {"stage2.log_every", "stage2.checkpoint_every", "stage2.max_steps", "stage2.decoding_steps"}
OLD_STAGE2 |= {"stage2.temperature", "stage2.choice_temperature", "stage2.guidance"}
OLD_EVALUATION = {"evaluation.figures", "evaluation.sample_batch_size"}
OLD_PIPELINE = {"progress", "device", "tracker", "preset", "data.data_dir"}


def _left_out(**options: object) -> set[str]:
    sections = options.get("sections")
    every = result_fields(RunConfig(), ignoring=(), sections=sections)  # type: ignore[arg-type]
    return set(every) - set(result_fields(RunConfig(), **options))  # type: ignore[arg-type]


def test_the_field_tags_leave_out_what_the_old_lists_did() -> None:
    assert _left_out(sections=("seed", "data", "stage1"), ignoring=(NO_RESULT, STOP)) == OLD_STAGE1
    assert _left_out(sections=("seed", "stage2"), ignoring=(NO_RESULT, STOP, SAMPLING)) == OLD_STAGE2
    assert _left_out(sections=("evaluation",), ignoring=(NO_RESULT, FIGURES)) == OLD_EVALUATION
    # the main job's comparison also leaves out the logging cadence and the sampling batch (no result
    # depends on them), and still compares figures, max_steps and the decoding fields
    cadence = {"stage1.log_every", "stage1.checkpoint_every", "stage1.eval_every", "stage2.log_every"}
    cadence |= {"stage2.checkpoint_every", "evaluation.sample_batch_size"}
    assert _left_out() == OLD_PIPELINE | cadence


def test_result_tags_and_fields() -> None:
    assert result_tag("stage2.guidance") == SAMPLING and result_tag("evaluation.figures") == FIGURES
    assert result_tag("stage1.max_steps") == STOP and result_tag("device") == NO_RESULT
    assert result_tag("stage1.lr") is None and result_tag("stage1.augmentation.names") is None
    assert result_tag("stage9.lr") is None and result_tag("seed.x") is None
    flat = result_fields(RunConfig(), sections=("seed", "stage1"))
    assert flat["stage1.augmentation.names"] == ["warp"] and flat["seed"] == 0 and "data.dataset" not in flat
    # a recorded dict (as an older run wrote it, with a field that no longer exists) is read the same way
    recorded = to_dict(RunConfig())
    recorded["stage1"]["old_field"] = 1
    assert result_fields(recorded) == {**result_fields(RunConfig()), "stage1.old_field": 1}
