"""Atomic writes: every output is written to a hidden temporary file beside it, then renamed over its name, so
that a crash or a kill never leaves a half-written image, model or report behind; the temporaries a killed run
left are removed by the next run, and the place an output goes is checked before the work that produces it."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from .errors import UserError


def check_writable_place(path: str | os.PathLike) -> None:
    """A UserError unless ``path`` (a file or folder to be made) can be created: its nearest existing ancestor
    is a folder this process may write in. Checked before the work, so that a typo in ``-o`` (a file where a
    folder is meant, a folder without permission) does not cost the whole run and get a misleading message."""
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{path}: cannot write: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write: no permission to write in {ancestor}")


def refuse_folder(path: str | os.PathLike) -> Path:
    """``path`` as a Path; a UserError when it is an existing folder where a file is to be written, or a
    place that cannot be written (checked before the work that produces the file, so nothing is computed
    for nothing)."""
    if isinstance(path, str) and path.endswith(("/", os.sep)):  # Path() drops the slash: a file named so
        raise UserError(f"{path}: a folder name (it ends with /); give a file name")
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    check_writable_place(path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path`` (atomic on POSIX).

    The file gets the permissions a plain ``open`` would give (mkstemp makes 0600, and some writers re-create
    the temporary file), and a ``path`` that is a folder, or that cannot be written (no permission, a
    read-only or full disk), is a one-line UserError naming it and the reason, not the temporary file (a
    folder that cannot be made raises the OSError that names it).
    """
    path = refuse_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = temporary_beside(path)
    try:
        yield tmp_path
        publish(tmp_path, path)
    except OSError as exc:  # raised by the writer inside the block too: it names the temporary file
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        discard(tmp_path)


def temporary_beside(path: Path) -> Path:
    """A new, empty, hidden file in ``path``'s folder, named as :func:`remove_stale_temporaries` knows it
    (``.NAME.XXXXXXXX.tmp.SUFFIX``: two runs writing one output never share it, and one killed leaves a file
    the next run removes). A folder that cannot be written is a one-line UserError naming ``path``."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:  # held with a shared lock until published or discarded: another run's cleanup leaves it alone
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_SH)
        _HELD[tmp] = fd
    except (ImportError, OSError):  # no POSIX locks here (or on this file system): age alone decides
        os.close(fd)
    return tmp


#: the temporaries this process is writing, each with the descriptor that holds its shared lock
_HELD: dict[Path, int] = {}


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` over ``path`` (atomic on POSIX), with the permissions a plain ``open`` would
    have given it (mkstemp makes 0600, and writers that re-open the file keep that); its lock is released."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    _release(tmp)


def discard(tmp: Path) -> None:
    """Remove a temporary of :func:`temporary_beside` that is not to be published (if still there)."""
    tmp.unlink(missing_ok=True)
    _release(tmp)


def _release(tmp: Path) -> None:
    fd = _HELD.pop(tmp, None)
    if fd is not None:
        os.close(fd)


def _in_use(path: str) -> bool:
    """Whether a running process holds the temporary ``path`` (the shared lock of :func:`temporary_beside`)."""
    try:
        import fcntl

        fd = os.open(path, os.O_RDONLY)
    except (ImportError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


#: when this process started (near enough: the commands import this module first): older temporary files are
#: stale, newer ones may belong to a run writing there now
_STARTED = time.time()
#: the name :func:`atomic_path` gives the temporary file of ``NAME`` (tempfile.mkstemp: 8 random characters)
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(?P<suffix>.*)")


def remove_stale_temporaries(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete the hidden temporary files (``.NAME.XXXXXXXX.tmp.SUFFIX``) that an earlier run, killed while it
    wrote one of these outputs with :func:`atomic_path`, left beside it: nothing else would ever remove them.
    One listing per folder; only files older than this process (not those of a run writing there now).
    Returns them."""
    wanted: dict[Path, set[str]] = {}
    for output in outputs:
        path = Path(output)
        wanted.setdefault(path.parent, set()).add(path.name)
    removed = []
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no such folder yet, or not readable: nothing of ours there
            continue
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if not (match and match["name"] in names and match["suffix"] == Path(match["name"]).suffix):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < _STARTED \
                        and not _in_use(entry.path):  # (a long run writing it now holds its lock)
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                pass
    return removed
