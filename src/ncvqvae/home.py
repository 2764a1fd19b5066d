"""The project's home directory, atomic file writes and inter-process locks.

``NCVQVAE_HOME`` (default: ``~/.cache/ncvqvae``, or ``$XDG_CACHE_HOME/ncvqvae``) holds fetched datasets,
trained evaluators and downloads. ``NCVQVAE_DATA_DIR`` (or ``--data-dir``) points at an existing UCR
archive root that is searched before anything is fetched.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock


def home_dir() -> Path:
    """Return the project's home/cache directory, creating it if needed."""
    env = os.environ.get("NCVQVAE_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(cache) / "ncvqvae"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """Return (and create) a sub-directory of :func:`home_dir`, e.g. ``cache_dir("datasets")``."""
    path = home_dir().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir_from_env() -> Path | None:
    """The UCR archive root named by ``NCVQVAE_DATA_DIR``, if any."""
    env = os.environ.get("NCVQVAE_DATA_DIR")
    return Path(env).expanduser() if env else None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``.

    A crash or an exception inside the block leaves the old file (if any) untouched, so a partial
    write never looks complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files; give the result the permissions a plain open() would have.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths appear in results; everything else is a bug worth seeing.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def file_lock(path: str | os.PathLike[str], timeout: float = -1) -> FileLock:
    """An inter-process lock held on ``<path>.lock`` (use as a context manager)."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=timeout)
