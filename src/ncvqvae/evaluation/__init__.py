"""Evaluation of trained runs (SPEC §5): stage-1 numbers, the FCN evaluator, FID / IS / CAS, figures.

The public names below are imported lazily (on first attribute access), so importing one submodule —
``ncvqvae.evaluation.stage1_metrics`` during training, say — does not pull in scipy, matplotlib or the
generator stack.

- :func:`evaluate_run` (``pipeline``): everything for one run → ``results.json`` and figures.
- :func:`get_evaluator` (``evaluator``): the cached per-dataset FCN; :func:`train_fcn`, :class:`FCN`.
- :func:`fid`, :func:`class_fid`, :func:`inception_score`, :func:`bootstrap_ci` (``metrics``): pure maths.
- ``cas``: classification accuracy score (``from ncvqvae.evaluation.cas import cas``; the package
  attribute ``cas`` is that submodule).
- ``figures``: the thesis pictures.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_run": "pipeline",
    "prepare_evaluator": "pipeline",
    "get_evaluator": "evaluator",
    "evaluator_info": "evaluator",
    "FCN": "fcn",
    "train_fcn": "fcn",
    "fcn_outputs": "fcn",
    "fid": "metrics",
    "class_fid": "metrics",
    "inception_score": "metrics",
    "bootstrap_ci": "metrics",
    "CASResult": "cas",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
