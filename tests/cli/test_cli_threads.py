"""``ncvqvae --threads N`` / ``NCVQVAE_THREADS``: the CPU threads of one process."""

from __future__ import annotations

import pytest
import torch

from ncvqvae import cli


@pytest.fixture
def restore_threads():  # noqa: ANN201
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_option_sets_torch_threads(restore_threads: None, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--threads", "1", "presets"]) == 0
    assert torch.get_num_threads() == 1
    assert "quick" in capsys.readouterr().out


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch, restore_threads: None) -> None:
    monkeypatch.setenv("NCVQVAE_THREADS", "1")
    assert cli.build_parser().parse_args(["presets"]).threads == 1
    monkeypatch.setenv("NCVQVAE_THREADS", "two")
    with pytest.raises(SystemExit, match="NCVQVAE_THREADS must be a positive integer"):
        cli.build_parser()
    with pytest.raises(SystemExit, match="at least 1"):
        cli.set_threads(0)

