"""Shared fixtures: an isolated NCVQVAE_HOME per test session, headless matplotlib."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


def _import_benchmark(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Import ``benchmarks/NAME.py`` by name (the scripts are not a package) to test its functions."""
    return _import_benchmark


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real cache: every test session gets its own NCVQVAE_HOME."""
    if "NCVQVAE_TEST_KEEP_HOME" not in os.environ:
        monkeypatch.setenv("NCVQVAE_HOME", str(tmp_path_factory.getbasetemp() / "ncvqvae_home"))
    monkeypatch.delenv("NCVQVAE_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Run a module's tiny models on one torch thread (opt in: ``pytest.mark.usefixtures("one_thread")``).

    Tiny models gain nothing from a second thread, and on a shared, loaded CPU two OpenMP threads
    spin-wait each other into steps 10-100x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
