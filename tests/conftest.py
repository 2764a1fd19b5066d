"""Shared fixtures: an isolated NCVQVAE_HOME per test session, headless matplotlib."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real cache: every test session gets its own NCVQVAE_HOME."""
    if "NCVQVAE_TEST_KEEP_HOME" not in os.environ:
        monkeypatch.setenv("NCVQVAE_HOME", str(tmp_path_factory.getbasetemp() / "ncvqvae_home"))
    monkeypatch.delenv("NCVQVAE_DATA_DIR", raising=False)
