"""Which files the user's inputs name: folders expanded into their images (hidden files, loss plots and earlier
results left out), two spellings of one file or directory entry told apart, and the images of two folders paired
by name."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Sequence

from .errors import UserError
from .io import IMAGE_SUFFIXES, compressed_fits_name


def resolved(path: str | os.PathLike, loop_ok: bool = False) -> Path:
    """``path`` made absolute with its symlinks followed (``Path.resolve``), where a symlink loop (a link that
    leads back to itself) is a one-line UserError naming ``path`` instead of a RuntimeError (Python 3.11) that the
    command line would print as a traceback. ``loop_ok``: where only the identity of a name matters (is it one of
    the inputs?), a looping name stands for itself (its absolute name), being no other file."""
    try:
        found = Path(path).resolve()
        try:  # Python 3.13 returns a name through a loop as it is (3.10-3.12 raise RuntimeError): stat says ELOOP
            os.stat(found)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise
        return found
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno != errno.ELOOP:
            raise
        if loop_ok:
            return Path(os.path.abspath(path))
        raise UserError(f"{path}: a symbolic link that leads back to itself (a symlink loop); give another "
                        "name or remove the link") from None


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of an existing file, the same for every name of it (relative, through a link, a hard
    link); None where it does not exist or cannot be reached. To tell whether two inputs are one file (read
    twice); whether an output would replace an input is :func:`same_entry` (a hard link is another entry)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def entry_identity(path: str | os.PathLike) -> tuple[int, int, str] | None:
    """The :func:`file_identity` of the folder holding ``path`` (symlinks followed) and the entry's name: the same
    for every spelling of one directory entry (relative, with ``..``, through a symlinked folder or a bind mount);
    None where that folder does not exist. To tell whether an output would replace an input: every output is
    written atomically (:func:`~selfrestore.atomic_files.atomic_path`: a temporary file renamed over the name),
    which replaces the directory entry, never the file's bytes, so an output on a hard link of an input leaves the
    input whole under its own name. The entry, not the inode, is what an output can destroy (see
    :func:`same_entry`)."""
    path = Path(path)
    if path.name in ("", ".."):  # ".", "x/..": the folder itself, named in its real parent
        path = resolved(path, loop_ok=True)
    folder = file_identity(path.parent)
    return None if folder is None else (*folder, path.name)


def folded_entry(identity: tuple[int, int, str]) -> tuple[int, int, str]:
    """An :func:`entry_identity` with its name case- and Unicode-folded: what a case-insensitive file system
    (macOS, Windows) takes for one name. To look up candidates of :func:`same_entry` in a dict."""
    import unicodedata

    return identity[0], identity[1], unicodedata.normalize("NFC", identity[2]).casefold()


def same_entry(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether ``first`` and ``second`` name the same directory entry, so writing one replaces the other: the
    same resolved name, or the same :func:`entry_identity`, or (a case-insensitive file system) names that
    differ only in case in the same folder that are the same existing file. A hard link is another entry: an
    output written there (atomically) leaves the other name and its bytes as they were."""
    first, second = Path(first), Path(second)
    if resolved(first, loop_ok=True) == resolved(second, loop_ok=True):
        return True
    one, other = entry_identity(first), entry_identity(second)
    if one is None or other is None:
        return False
    if one == other:
        return True
    identity = file_identity(first)  # a.png and A.png on macOS: one entry, the same file
    return folded_entry(one) == folded_entry(other) and identity is not None and identity == file_identity(second)


#: the name ending of ``fit``'s loss plots (:func:`selfrestore.train.plot_path`), left out of folders' images
LOSS_PLOT_SUFFIX = ".training.png"


def is_loss_plot(path: Path) -> bool:
    """``NAME.training.png`` beside a model ``NAME.safetensors``: the loss plot ``fit`` draws, not an image of
    the data (a model may be saved inside its data folder). A user's image of that name alone is data."""
    name = path.name
    return name.lower().endswith(LOSS_PLOT_SUFFIX) and \
        path.with_name(name[:-len(LOSS_PLOT_SUFFIX)] + ".safetensors").is_file()


def list_images(inputs: Sequence[str | os.PathLike], output_folder: str | os.PathLike | None = None,
                notes: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively, sorted) into image paths. Inside a folder, hidden files and
    folders (names starting with "."; e.g. the temporary file of a killed write, macOS ``._NAME`` companions,
    a video run's frame spool) and ``fit``'s loss plots (:func:`is_loss_plot`: a model may be saved inside its
    data folder) are not images of the data; such a file named as an input is. Nor are earlier results: with
    ``output_folder`` (restore's ``-o``) inside an input folder, what lies under it, and under the subfolder
    the folder's own results go to (``output_folder/NAME``), is left out (a rerun would restore them again).

    Returns (paths, problems): missing inputs and empty folders are reported as one-line problems instead
    of raising, so that the good inputs of the same call are still processed. ``notes``: a list that gets a
    line for each link inside a folder whose target is gone (skipped: to be said, not a failure).
    """
    paths: list[Path] = []
    problems: list[str] = []
    results = None if output_folder is None else resolved(output_folder)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            root = resolved(p)
            earlier = [] if results is None else [  # p.name: as restore names the subfolder; only inside p
                f for f in {results, results / p.name} if f != root and f.is_relative_to(root)]
            found, broken = [], []
            for q in p.rglob("*"):
                image_name = q.suffix.lower() in IMAGE_SUFFIXES or compressed_fits_name(q.name)
                if not image_name or any(part.startswith(".") for part in q.relative_to(p).parts):
                    continue
                if q.is_file():
                    if not is_loss_plot(q) and not any(resolved(q).is_relative_to(folder) for folder in earlier):
                        found.append(q)
                elif notes is not None and q.is_symlink() and not q.exists() \
                        and not any(resolved(q.parent, loop_ok=True).is_relative_to(folder) for folder in earlier):
                    broken.append(f"{q}: a link to nothing that exists (a missing or looping target); skipped")
            found.sort()
            if notes is not None:
                notes += sorted(broken)
            if not found:
                problems.append(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    return paths, problems


def match_by_name(first: str | os.PathLike, second: str | os.PathLike, names: tuple[str, str] = ("first", "second")
                  ) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pair the images of two folders by relative path without suffix (``a.png`` pairs with ``a.jpg``).

    Returns (pairs sorted by name, names only in ``first``, names only in ``second``). ``names`` say what
    each folder holds, for the messages. UserError for a missing or empty folder, two images of one name, or
    one folder given as both (every pair would be an image with itself: a network trained on it learns nothing).
    """
    if resolved(first, loop_ok=True) == resolved(second, loop_ok=True) and Path(first).is_dir():
        raise UserError(f"{first}: given as both the {names[0]} and the {names[1]} folder; give two folders")
    found = []
    for name, folder in zip(names, (Path(first), Path(second))):
        if not folder.is_dir():
            raise UserError(f"{folder}: a file, not a folder; give the {name} as a folder of images" if folder.exists()
                            else f"{folder}: {name} folder does not exist")
        paths, problems = list_images([folder])
        if problems:
            raise UserError(problems[0])
        by_stem: dict[str, Path] = {}
        for p in paths:
            stem = p.relative_to(folder).with_suffix("").as_posix()
            if stem in by_stem:
                raise UserError(f"{folder}: two images named {stem!r} ({by_stem[stem].name}, {p.name})")
            by_stem[stem] = p
        found.append(by_stem)
    a, b = found
    pairs = [(a[s], b[s]) for s in sorted(set(a) & set(b))]
    return pairs, sorted(set(a) - set(b)), sorted(set(b) - set(a))


def match_all_by_name(first: str | os.PathLike, second: str | os.PathLike,
                      names: tuple[str, str] = ("first", "second")) -> list[tuple[Path, Path]]:
    """:func:`match_by_name` where every image must have its partner: a one-line UserError naming the
    unmatched files of both folders otherwise."""
    pairs, only_first, only_second = match_by_name(first, second, names)
    parts = []
    for folder, unmatched, partner in ((first, only_first, names[1]), (second, only_second, names[0])):
        if unmatched:
            parts.append(f"{folder}: no {partner} match for {', '.join(unmatched[:3])}"
                         + (f" (and {len(unmatched) - 3} more)" if len(unmatched) > 3 else ""))
    if parts:
        raise UserError("; ".join(parts) + " (pairs are matched by file name)")
    return pairs


def file_or_folder_pairs(first: str | os.PathLike, second: str | os.PathLike, names: tuple[str, str],
                         options: tuple[str, str]) -> list[tuple[Path, Path]]:
    """Two files (one pair), or two folders matched by file name (:func:`match_all_by_name`); a one-line
    UserError for a missing path or a file given with a folder. ``names`` say what each holds, ``options``
    how the user gave them (e.g. "--blurry"), for the messages."""
    a, b = Path(first), Path(second)
    for path, option in ((a, options[0]), (b, options[1])):
        if not path.exists():
            raise UserError(f"{path}: no such file or folder ({option})")
    if resolved(a) == resolved(b):  # the same shots twice: every pair would be one image with itself
        raise UserError(f"{options[0]} and {options[1]} both name {a}: give the {names[0]} and the {names[1]} "
                        "images apart")
    if a.is_dir() and b.is_dir():
        return match_all_by_name(a, b, names)
    if a.is_dir() or b.is_dir():
        raise UserError(f"{options[0]} {a} and {options[1]} {b}: give two files or two folders, not one of each")
    return [(a, b)]
