"""``ncvqvae sample``: draw synthetic series from a trained run and write them to a file.

Examples::

    ncvqvae sample --run runs/ECG5000-vibcreg-warp-s1 --n 1000 --class-proportional --out synth.tsv
    ncvqvae sample --run runs/ECG5000-vibcreg-warp-s1 --n 200 --class 3 --guidance 2 --seed 1 \\
        --out class3.npz --plot class3.png
    ncvqvae sample --run runs/ECG5000-vibcreg-warp-s1 --n 100000 --out uncond.npz   # streamed

Without ``--class``/``--class-proportional`` the samples are unconditional (no labels). ``--class``
takes a label as it appears in the data files (ECG5000: 1..5). The format follows the extension of
``--out``: ``.npz``, ``.npy``, ``.tsv`` (UCR, labelled only), ``.csv``, ``.ts``, ``.arff``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch

from ncvqvae.errors import ConfigError

PLOT_PER_CLASS = 50  # generated series kept per class for --plot (its median and 10–90% band)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sample",
        help="generate synthetic series from a trained run",
        description="Sample from a run's stage-2 prior, decode with its tokenizer and write a dataset file.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory (stage 2 trained)")
    parser.add_argument("--n", type=int, required=True, help="number of series")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--class", dest="label", metavar="LABEL", help="sample one class (its data label)")
    which.add_argument("--class-proportional", action="store_true", help="classes as in training")
    parser.add_argument("--guidance", type=float, help="guidance scale (default: the run's, 1)")
    parser.add_argument("--steps", type=int, help="decoding steps T (default: the run's, 10)")
    parser.add_argument("--temperature", type=float, help="token temperature (default: the run's, 1)")
    parser.add_argument(
        "--choice-temperature", type=float, help="Gumbel noise of the re-masking (default: the run's, 4)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--batch-size", type=int, default=512, help="series decoded at once (default 512)")
    parser.add_argument("--original-scale", action="store_true", help="undo the global normalisation")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, ...")
    parser.add_argument("--out", required=True, metavar="FILE", help=".npz .npy .tsv .csv .ts .arff")
    parser.add_argument("--plot", metavar="PNG", help="draw samples beside real series")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.sampling import class_ids_for_labels, class_proportional, iter_samples, write_samples
    from ncvqvae.stage2 import load_generator
    from ncvqvae.training import make_generator, pick_device

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    device = pick_device(args.device)
    model = load_generator(args.run, device=device)
    if args.class_proportional:
        classes = class_proportional(args.n, model)
    elif args.label is not None:
        if model.n_classes == 0:
            raise ConfigError(f"{args.run}: the prior is unconditional (unlabelled data); drop --class")
        classes = class_ids_for_labels(model, [args.label])[0]
    else:
        classes = None
    decoding = model.decoding.override(
        steps=args.steps,
        temperature=args.temperature,
        choice_temperature=args.choice_temperature,
        guidance=args.guidance,
    )
    stream = iter_samples(
        model,
        args.n,
        classes,
        decoding=decoding,
        generator=make_generator(args.seed, device),
        batch_size=args.batch_size,
        denormalize=args.original_scale,
    )
    kept: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    if args.plot:
        stream = _keep_for_plot(stream, kept)
    name = model.data_stats.get("name")
    n = write_samples(args.out, stream, label_values=model.label_values or None, name=name)
    print(f"wrote {n} samples to {args.out}")
    if args.plot:
        _plot(args, model, kept)
        print(f"plot: {args.plot}")
    return 0


def _keep_for_plot(
    stream: Iterator[tuple[torch.Tensor, torch.Tensor | None]], kept: list
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Pass batches through, keeping up to PLOT_PER_CLASS series per class (memory stays bounded)."""
    counts: dict[int | None, int] = {}
    for x, y in stream:
        for i in range(x.shape[0]):
            key = int(y[i]) if y is not None else None
            if counts.get(key, 0) < PLOT_PER_CLASS:
                counts[key] = counts.get(key, 0) + 1
                kept.append((x[i], y[i] if y is not None else None))
        yield x, y


def _plot(args: argparse.Namespace, model, kept: list) -> None:
    import logging

    from ncvqvae.data.prepare import load_prepared
    from ncvqvae.errors import NcvqvaeError
    from ncvqvae.evaluation.figures import plot_samples
    from ncvqvae.training import RunDir

    gx = torch.stack([x for x, _ in kept])
    gy = torch.stack([y for _, y in kept]) if kept[0][1] is not None else None
    try:
        cfg = RunDir(model.run_dir).read_config()
        data = load_prepared(cfg.data, seed=cfg.seed)
        rx, ry = data.X_train, data.y_train
        if args.original_scale:
            rx = model.denormalize(rx)
    except NcvqvaeError as err:  # the picture is still useful without the real series
        logging.getLogger(__name__).warning("no real series in the plot: %s", err)
        rx, ry = gx[:0], None
    names = model.data_stats.get("class_names") or model.label_values
    plot_samples(gx, gy, rx, ry, args.plot, class_names=names, seed=args.seed)
