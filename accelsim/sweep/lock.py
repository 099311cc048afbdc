"""One sweep at a time per results directory.

Why: two ``sweep run`` on one directory both read the same "already done" set and then compute
every missing point twice (the store tolerates the duplicate rows, but the work is wasted and
nobody is told). The runner holds an exclusive ``flock`` on ``DIR/_sweep.lock`` while it runs;
a second runner fails at once with one error naming the holder (pid, host, start time). The
kernel drops the lock when the holder exits, however it exits (SIGKILL included), so a stale
file never blocks anyone. Where ``fcntl`` is missing (Windows) or the file system refuses locks,
the guard is skipped rather than failing the sweep.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from accelsim.errors import AccelsimError

LOCK_NAME = "_sweep.lock"  # a leading "_": pyarrow's dataset discovery ignores it


@contextlib.contextmanager
def directory_lock(root: str | Path, purpose: str = "sweep run") -> Iterator[None]:
    """Hold the directory's lock for the ``with`` body, or raise AccelsimError naming who holds it.

    A directory this call had to create, and that holds nothing but the lock file when the body
    ends (the run failed before writing anything), is removed again.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield
        return
    root = Path(root)
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except NotADirectoryError:
        raise AccelsimError("is a file, not a results directory", source=str(root)) from None
    except OSError as err:
        raise AccelsimError(f"cannot use as a results directory: {err.strerror}", source=str(root)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AccelsimError(f"another sweep is already running on this directory ({_holder(fd)}); "
                                "wait for it to finish or choose another --out", source=str(root)) from None
        except OSError:  # a file system without locks: run unguarded
            pass
        else:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "started_unix_s": time.time(), "purpose": purpose}).encode())
        yield
    finally:
        os.close(fd)  # releases the flock
        if created:
            _remove_if_only_lock(root)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started_unix_s"])))
        return f"{info.get('purpose', 'sweep run')}, pid {int(info['pid'])} on host {info['host']}, started {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"


def _remove_if_only_lock(root: Path) -> None:
    try:
        if [p.name for p in root.iterdir()] == [LOCK_NAME]:
            (root / LOCK_NAME).unlink()
            root.rmdir()
    except OSError:
        pass
