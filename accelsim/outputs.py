"""Output paths checked before the work, the same way for every command.

Why: an unwritable ``--save`` or ``--csv`` used to be found only after a solve or simulation that
may have taken minutes, and then as a traceback (a directory given as a file: IsADirectoryError).
Every command that writes a file or a results directory calls one of these first. Policy, shared
with the plots: missing parent directories are created; a path that is a directory where a file
is wanted (or the reverse), or a place where nothing can be created, is one AccelsimError naming
the option. Writability is probed by really creating (and removing) a file, since permission bits
say nothing under root or on a read-only mount.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from accelsim.errors import AccelsimError


def check_output_file(path: str | Path, field: str) -> Path:
    """``path`` can be written as a file (its parents created now); otherwise one clear error."""
    if str(path).strip() == "":  # before Path(), which would read "" as "."
        raise AccelsimError("is empty; give a file path", field=field)
    path = Path(path)
    if path.is_dir():
        raise AccelsimError("cannot write: is a directory; give a file path", field=field, source=str(path))
    with _as_user_error(field, path):
        path.parent.mkdir(parents=True, exist_ok=True)
    _probe(path.parent, field, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise AccelsimError("cannot write: the file is read-only", field=field, source=str(path))
    return path


def check_output_dir(path: str | Path, field: str) -> Path:
    """``path`` is, or can become, a directory to write into (not created here)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise AccelsimError("cannot write: is a file; give a directory", field=field, source=str(path))
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise AccelsimError(f"cannot write: cannot create a directory under the file {existing}", field=field, source=str(path))
    _probe(existing, field, path)
    return path


def write_output(path: str | Path, text: str, field: str) -> Path:
    """Write ``text`` to ``path`` (parents created); a failure (no permission, a full disk, a parent
    that is a file) is one AccelsimError naming the option."""
    path = check_output_file(path, field)
    with _as_user_error(field, path):
        path.write_text(text)
    return path


def _probe(directory: Path, field: str, path: Path) -> None:
    with _as_user_error(field, path):
        fd, name = tempfile.mkstemp(prefix=".accelsim-probe-", dir=directory)
        os.close(fd)
        os.unlink(name)


@contextlib.contextmanager
def _as_user_error(field: str, path: Path) -> Iterator[None]:
    try:
        yield
    except (FileExistsError, NotADirectoryError):
        raise AccelsimError("cannot write: a parent of this path is a file", field=field, source=str(path)) from None
    except OSError as err:
        raise AccelsimError(f"cannot write here: {err.strerror or err}", field=field, source=str(path)) from None
