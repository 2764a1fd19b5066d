"""End to end on a tiny trained run: results.json, figures, reuse, determinism."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import matplotlib.image
import pytest
import threadpoolctl
import torch

from ncvqvae.config import Decoding, replace, resolve_config
from ncvqvae.errors import CheckpointError
from ncvqvae.evaluation import pipeline
from ncvqvae.evaluation.figures import LOSS_CURVES_SIZE, class_samples_size
from ncvqvae.evaluation.pipeline import FIGURE_NAMES, FIGURES_DIR, evaluate_run, real_reference_set
from ncvqvae.rundir import RunDir

OVERRIDES = [
    "data.n_train=32",
    "data.n_test=24",
    "progress=false",
    "evaluation.evaluator_epochs=1",
    "evaluation.cas_epochs=1",
    "evaluation.n_samples=24",
    "evaluation.cas_min_samples=24",
    "evaluation.bootstrap=2",
]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Small matrices: a second BLAS/OpenMP thread only spin-waits on a loaded CPU."""
    with threadpoolctl.threadpool_limits(1):
        yield


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """A run of the smoke preset (a few steps per stage) on 32 twopatterns series."""
    from ncvqvae.stage1 import train_stage1
    from ncvqvae.stage2 import train_stage2

    cfg = resolve_config(preset="smoke", overrides=OVERRIDES)
    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:  # module scope: the per-test isolated home is not set yet
        mp.setenv("NCVQVAE_HOME", str(tmp_path_factory.getbasetemp() / "ncvqvae_home"))
        train_stage1(cfg, root)
        train_stage2(cfg, root)
    return root


def _generation(root: Path) -> dict:
    return json.loads((root / "results.json").read_text())["generation"]


def test_evaluate_run_writes_every_metric_and_figure(run_dir: Path) -> None:
    results = evaluate_run(run_dir, device="cpu", progress=False)
    stage1 = json.dumps(results["stage1"])  # stage 1's own layout; its numbers are gathered here
    assert '"recon"' in stage1 and '"knn_accuracy"' in stage1
    gen = results["generation"]
    assert gen == _generation(run_dir)
    assert gen["fid"] >= 0 and 1.0 <= gen["is_mean"] <= 4.0 + 1e-9
    assert gen["fid_ci95"][0] <= gen["fid_ci95"][1] and gen["is_ci95"][0] <= gen["is_ci95"][1]
    assert len(gen["cfid"]) == 4 and all(v is None or v >= 0 for v in gen["cfid"].values())
    assert 0.0 <= gen["cas"] <= 1.0 and gen["cas"] == gen["cas_clean"] and gen["cas_legacy"] is None
    # beyond the thesis (issue 17): the cheap extras are on by default, the expensive ones off
    assert gen["kid_ci95"][0] <= gen["kid_ci95"][1] and gen["kid_std"] >= 0
    assert isinstance(gen["real_kid_train_test"], float) and len(gen["ckid"]) == 4
    assert {"precision", "recall", "density", "coverage"} <= set(gen["prdc"]) and gen["prdc"]["k"] == 5
    assert all(0.0 <= gen["prdc"][m] <= 1.0 for m in ("precision", "recall", "coverage"))
    for space in ("features", "series"):
        memo = gen["memorisation"][space]
        assert 0.0 <= memo["fraction"] <= 1.0 and isinstance(memo["flagged"], bool), space
        assert memo["n_generated"] == 24 and memo["n_test"] == 24 and memo["n_train"] == 32
    assert gen["fid_minirocket"] is None and gen["utility"] is None
    assert {"kid", "prdc", "memorisation"} <= set(gen["seconds"])
    assert gen["cas_ceiling"] == gen["evaluator"]["test_accuracy"]
    protocol = gen["protocol"]
    assert protocol["n_real"] == 24 and protocol["n_fake"] == 24 and protocol["n_fake_fid"] == 24
    assert protocol["n_conditional"] >= 24 and protocol["evaluation"]["bootstrap"] == 2
    assert protocol["evaluator_key"] == gen["evaluator"]["key"]
    assert {"unconditional", "conditional", "cas", "bootstrap_fid"} <= set(protocol["seeds"])
    sizes = {
        "samples_per_class.png": class_samples_size(4),
        "latents_tsne.png": (500, 600),
        "latents_pca.png": (500, 600),
        "generated_vs_real_pca.png": (500, 600),
        "loss_curves.png": LOSS_CURVES_SIZE,
    }
    assert set(sizes) == set(FIGURE_NAMES)
    for name, size in sizes.items():
        image = matplotlib.image.imread(run_dir / FIGURES_DIR / name)
        assert image.shape[:2] == size and image[..., :3].std() > 0.01, name


def test_rerun_with_the_same_settings_reuses_everything(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = evaluate_run(run_dir, device="cpu", progress=False)
    stamps = {name: (run_dir / FIGURES_DIR / name).stat().st_mtime_ns for name in FIGURE_NAMES}

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed although the settings did not change")

    monkeypatch.setattr(pipeline, "get_evaluator", refuse)
    monkeypatch.setattr("ncvqvae.sampling.sample", refuse)
    assert evaluate_run(run_dir, device="cpu", progress=False) == first
    assert stamps == {name: (run_dir / FIGURES_DIR / name).stat().st_mtime_ns for name in FIGURE_NAMES}


def test_the_stored_evaluator_and_new_fields_at_their_default_keep_the_results(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same evaluator given by evaluation.evaluator_path (by any spelling of the path), and
    utility_steps at its default (a field added since results were first hashed), reuse the numbers."""
    from ncvqvae.config import replace
    from ncvqvae.evaluation.evaluator import export_evaluator
    from ncvqvae.training import RunDir

    first = evaluate_run(run_dir, device="cpu", figures=False, progress=False)
    exported = export_evaluator(first["generation"]["evaluator"], tmp_path / "ev")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("recomputed")

    monkeypatch.setattr(pipeline, "get_evaluator", refuse)
    base = RunDir(run_dir).read_config().evaluation
    for path in (str(exported), str(tmp_path / "." / "ev")):
        pinned = replace(base, evaluator_path=path, utility_steps=None)
        again = evaluate_run(run_dir, cfg=pinned, device="cpu", figures=False, progress=False)
        assert again["generation"]["settings_hash"] == first["generation"]["settings_hash"]
    changed = replace(base, utility=True, utility_steps=1, kid=False, prdc=False, memorisation=False)
    with pytest.raises(AssertionError, match="recomputed"):  # a set value is a new setting
        evaluate_run(run_dir, cfg=changed, run_cas=False, figures=False, progress=False)


def test_changed_settings_recompute_and_equal_settings_reproduce(run_dir: Path) -> None:
    options = {"device": "cpu", "n_samples": 16, "run_cas": False, "figures": False, "progress": False}
    gen = evaluate_run(run_dir, **options)["generation"]
    assert gen["protocol"]["n_fake"] == 16 and gen["cas"] is None
    # Forget the numbers and compute them again: every draw is seeded, so they come back the same.
    path = run_dir / "results.json"
    results = json.loads(path.read_text())
    del results["generation"]
    path.write_text(json.dumps(results))
    again = evaluate_run(run_dir, **options)["generation"]
    for key in ("fid", "fid_ci95", "is_mean", "is_ci95", "cfid", "real_is_mean", "settings_hash"):
        assert again[key] == gen[key], key


def test_real_reference_set_is_the_stft_round_trip() -> None:
    x = torch.randn(5, 2, 37)
    assert torch.allclose(real_reference_set(x), x, atol=1e-5)


def test_evaluate_run_needs_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a run directory"):
        evaluate_run(tmp_path)


def test_generation_ceiling_benchmark_reads_a_finished_run(
    run_dir: Path, load_benchmark: Callable[[str], ModuleType]
) -> None:
    """benchmarks/generation_ceiling.py: evaluator accuracy on reconstructions beside the run's numbers."""
    module = load_benchmark("generation_ceiling")
    evaluate_run(run_dir, figures=False, progress=False)
    generation = json.loads((run_dir / "results.json").read_text())["generation"]
    result = module.ceiling(str(run_dir))
    assert result["cas"] == generation["cas"]
    assert result["conditional_accuracy"] == generation["conditional_accuracy"]
    assert result["evaluator_real"] == generation["cas_ceiling"]  # the evaluator's real test accuracy
    assert 0.0 <= result["evaluator_recon"] <= 1.0
    assert result["fid"] == generation["fid"] and result["is"] == generation["is_mean"]
    assert result["fid_recon"] >= 0.0 and result["is_recon"] >= 1.0 - 1e-9


def test_augmentation_utility_and_switches_in_the_pipeline(run_dir: Path) -> None:
    """utility on (one-epoch FCNs), the cheap extras off: their keys are null, the rest is unchanged."""
    from ncvqvae.config import replace
    from ncvqvae.training import RunDir

    base = RunDir(run_dir).read_config().evaluation
    cfg = replace(base, utility=True, utility_epochs=1, kid=False, prdc=False, memorisation=False)
    gen = evaluate_run(run_dir, cfg=cfg, run_cas=False, figures=False, progress=False)["generation"]
    utility = gen["utility"]
    assert utility["n_real"] == 32 and utility["n_extra"] == 32 and utility["epochs"] == 1
    assert utility["steps"] is None  # explicit epochs: an epoch budget
    # no utility budget given: the CAS budget, in steps where the CAS has one
    by_cas = replace(cfg, utility_epochs=None, cas_steps=2)
    gen_steps = evaluate_run(run_dir, cfg=by_cas, run_cas=False, figures=False, progress=False)["generation"]
    assert gen_steps["utility"]["steps"] == 2
    assert all(0.0 <= utility[k] <= 1.0 for k in ("real", "real_augmented", "real_synthetic"))
    assert gen["kid"] is None and gen["prdc"] is None and gen["memorisation"] is None
    assert "utility" in gen["seconds"] and "kid" not in gen["seconds"]
    assert gen["protocol"]["evaluation"]["utility"] is True


def test_the_evaluation_can_decode_otherwise(run_dir: Path) -> None:
    """``decoding=`` (or a RunConfig's stage-2 decoding fields) decides how the scored samples are drawn."""
    options = {"device": "cpu", "n_samples": 16, "run_cas": False, "figures": False, "progress": False}
    plain = evaluate_run(run_dir, **options)["generation"]
    assert plain["protocol"]["decoding"] == dataclasses.asdict(Decoding())  # the run's: the defaults
    guided = evaluate_run(run_dir, decoding=Decoding(guidance=2.0), **options)["generation"]
    assert guided["protocol"]["decoding"]["guidance"] == 2.0
    # guidance steers the class-conditional samples (the unconditional ones have no class to steer to)
    assert guided["cfid_mean"] != plain["cfid_mean"] and guided["fid"] == plain["fid"]
    assert guided["settings_hash"] != plain["settings_hash"]
    cfg = replace(RunDir(run_dir).read_config(), **{"stage2.guidance": 2.0})
    again = evaluate_run(run_dir, cfg=cfg, **options)["generation"]
    assert again["settings_hash"] == guided["settings_hash"] and again["cfid_mean"] == guided["cfid_mean"]
    # the run's own config decodes as its generator does: the numbers of the plain evaluation
    own = evaluate_run(run_dir, cfg=RunDir(run_dir).read_config(), **options)["generation"]
    assert own["settings_hash"] == plain["settings_hash"] and own["cfid_mean"] == plain["cfid_mean"]
