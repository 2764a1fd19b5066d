"""``ncvqvae evaluator train|info|export DATASET``: the cached FCN evaluator of a dataset.

``train`` trains the evaluator with the run config's recipe (``evaluation.evaluator_*``; ``--epochs``
sets ``evaluation.evaluator_epochs``) unless the cache already holds it; ``info`` says whether it is
cached, its key, path and accuracies, without training; ``export --out DIR`` copies the cached one to
``DIR``, which runs elsewhere use with ``--set evaluation.evaluator_path=DIR`` (one evaluator for runs on
several machines). All three compare the test accuracy with the published FCN accuracy on real data when
the dataset is in the thesis' list.

Examples::

    ncvqvae evaluator train ECG5000
    ncvqvae evaluator info gen-twopatterns --set data.n_train=200 --epochs 50
    ncvqvae evaluator export ECG5000 --preset thesis --out evaluators/ECG5000
"""

from __future__ import annotations

import argparse
from typing import Any

from ncvqvae.cli.common import add_config_options, add_data_dir_option, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluator",
        help="train or inspect the cached FCN evaluator of a dataset (FID / IS / CAS ceiling)",
        description="The supervised FCN evaluator, trained once per dataset and recipe and cached.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text in (
        ("train", "train the evaluator (or load it from the cache) and report its accuracy"),
        ("info", "show whether the evaluator is cached, its key, path and accuracy (trains nothing)"),
        ("export", "copy the cached evaluator to a folder, for evaluation.evaluator_path elsewhere"),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument(
            "dataset", metavar="DATASET", help="UCR/UEA name, built-in generator or file path"
        )
        action.add_argument(
            "--epochs", type=int, help="evaluator training epochs (evaluation.evaluator_epochs)"
        )
        action.add_argument("--device", help="auto (cuda if present), cpu, cuda, ...")
        if name == "train":
            action.add_argument("--no-progress", action="store_true", help="no progress bar")
        if name == "export":
            action.add_argument("--out", required=True, help="the folder to write fcn.pt and info.json into")
        add_data_dir_option(action)
        add_config_options(action)
        action.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.data.prepare import load_prepared
    from ncvqvae.evaluation.evaluator import evaluator_info, export_evaluator, get_evaluator
    from ncvqvae.evaluation.pipeline import EVALUATOR_SEED
    from ncvqvae.precision import resolved
    from ncvqvae.training import pick_device

    cfg = config_from_args(
        args,
        **{
            "data.dataset": args.dataset,
            "data.data_dir": args.data_dir,
            "evaluation.evaluator_epochs": args.epochs,
            "device": args.device,
            "progress": False if getattr(args, "no_progress", False) else None,
        },
    )
    data = load_prepared(cfg.data, seed=cfg.seed)
    device = pick_device(cfg.device)
    if args.action == "train":
        _, info = get_evaluator(
            data,
            cfg.evaluation,
            device=device,
            seed=EVALUATOR_SEED,
            progress=cfg.progress,
            precision=cfg.precision,
        )
    else:
        arithmetic = resolved(cfg.precision, device)
        info = evaluator_info(data, cfg.evaluation, seed=EVALUATOR_SEED, precision=arithmetic)
    if args.action == "export":
        out = export_evaluator(info, args.out)
        print(f"exported        {out} (use it with --set evaluation.evaluator_path={out})")
        info = {**info, "path": str(out)}
    print_info(info, data.name, trained=not info["cached"] if args.action == "train" else None)
    return 0


def print_info(info: dict[str, Any], dataset: str, *, trained: bool | None = None) -> None:
    """Print an evaluator's info dict, with the published real-data ceiling when known.

    ``trained``: None for ``info`` (report the cache state), else whether this call trained it.
    """
    from ncvqvae.evaluation.evaluator import real_data_ceiling

    recipe = info["recipe"]
    print(f"dataset         {dataset}")
    if info.get("pinned"):
        print("cached          stored (evaluation.evaluator_path)")
    elif trained is None:
        print(f"cached          {'yes' if info['cached'] else 'no (`ncvqvae evaluator train` trains it)'}")
    else:
        print(f"cached          yes ({'trained now' if trained else 'found in the cache'})")
    print(f"key             {info['key']}")
    print(f"path            {info['path']}")
    print(
        f"recipe          {recipe['epochs']} epochs, AdamW lr {recipe['lr']:g}, weight decay "
        f"{recipe['weight_decay']:g}, batch {recipe['batch_size']}, seed {recipe['seed']}"
    )
    if "test_accuracy" in info:
        print(f"train accuracy  {info['train_accuracy']:.4f}")
        print(f"test accuracy   {info['test_accuracy']:.4f}  ({info['n_test']} test series)")
        print(f"trained in      {info['train_seconds']:.1f} s on {info.get('device', '?')}")
    ceiling = real_data_ceiling(dataset)
    if ceiling is not None:
        print(
            f"published       FCN {ceiling['acc_fcn']:.3f}, ResNet {ceiling['acc_resnet']:.3f}, "
            f"1-NN DTW {ceiling['acc_1nn_dtw']:.3f} (Fawaz et al. 2019; full train split, 2000 epochs)"
        )
