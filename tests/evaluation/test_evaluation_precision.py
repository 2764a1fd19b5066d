"""bf16 autocast (``precision: auto`` on a bf16 CPU) trains the FCN evaluator as well as fp32 (slow).

Issue 13 asks that the evaluator's test accuracy agree within 0.01 between the precisions; measured on
gen-twopatterns (400 steps): 0.878 fp32 vs 0.880 bf16 (docs/benchmarks.md). This test repeats the check on
a smaller generator dataset with a tolerance for its smaller test split.
"""

from __future__ import annotations

import pytest

from ncvqvae.data.loading import load_dataset
from ncvqvae.data.prepare import prepare
from ncvqvae.evaluation.fcn import fcn_outputs, train_fcn


@pytest.mark.slow
def test_bf16_trains_the_evaluator_as_well_as_fp32() -> None:
    data = prepare(load_dataset("gen-cbf", n_train=300, n_test=600))
    accuracy = {}
    for precision in ("fp32", "bf16"):
        model = train_fcn(
            data.X_train, data.y_train, n_classes=data.n_classes, steps=150, batch_size=64,
            precision=precision,
        )
        accuracy[precision] = fcn_outputs(model, data.X_test, precision=precision).accuracy(data.y_test)
    assert accuracy["fp32"] > 0.8  # the check means something only if the evaluator learned the classes
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.02, accuracy
