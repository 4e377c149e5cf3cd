"""One writer per file on any filesystem: the run folder's `.lock` (`dss train`) and an extraction output's
`<out>.lock` (`dss extract`) are both taken here.

    lock = acquire(path)     # Busy(holder) when a live process holds it
    ...; lock.release()      # also released when the process dies
    held(path) -> bool       # whether a live process holds it, without taking it (a sweep: is this cell running?)

The kernel's flock where the filesystem has one: released when its process dies, so never stale. Lustre
mounted without `-o flock` and some NFS setups refuse flock (ENOSYS, EOPNOTSUPP, EINVAL, ENOLCK); there, and
wherever DSS_LOCK=file says so (Lustre's `-o localflock` and some NFS clients accept flock but exclude only
the processes of one node), the lock is a lock file `<path>.held`, created only if absent (O_EXCL), naming
host, pid and start time, whose modification time a thread refreshes every HEARTBEAT_S. A lock file without a
heartbeat for STALE_S, or whose holder on this host is gone, is taken over. Every process honours both kinds.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from dss.core.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: lock files only
    fcntl = None

HEARTBEAT_S = 20.0
STALE_S = 120.0  # six missed heartbeats: a busy file server or clock skew between nodes never looks like a crash
# what filesystems without (working) flock answer: Lustre without -o flock ENOSYS, NFS without lockd ENOLCK
UNSUPPORTED = {errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOLCK}
HOST = socket.gethostname()
_said: set[str] = set()


class Busy(Exception):
    """Another live process holds the lock; `holder` says which (pid, host, since when)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def forced_file() -> bool:
    value = os.environ.get("DSS_LOCK", "")
    if value not in ("", "auto", "file"):
        raise ConfigError(f"DSS_LOCK={value!r}: expected 'file' (a lock file with a heartbeat, for filesystems "
                          "whose flock excludes only one node's processes) or 'auto' (flock where it works)")
    return value == "file"


def _try_flock(fh) -> bool | str:
    """True: taken; False: another process holds it; a text: why this filesystem has no flock."""
    if fcntl is None:
        return "no flock on this platform"
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno not in UNSUPPORTED:
            raise
        return f"flock unsupported on this filesystem: {errno.errorcode.get(e.errno, e.errno)}"
    return True


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0 or sys.platform == "win32":
        return True  # cannot tell: only the heartbeat says
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_lock_file(path: Path) -> tuple[dict | None, os.stat_result] | None:
    """(its content, or None while its creator has not written it yet; its stat), or None when absent."""
    try:
        st, text = path.stat(), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        info = None
    return (info if isinstance(info, dict) else None), st


def _stale(info: dict | None, st: os.stat_result) -> bool:
    if time.time() - st.st_mtime > STALE_S:
        return True
    return info is not None and info.get("host") == HOST and not _alive(info.get("pid"))


def _describe(info: dict | None, st: os.stat_result) -> str:
    if info is None:
        return "a process taking the lock file now"
    return (f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}; lock file, heartbeat "
            f"{max(0.0, time.time() - st.st_mtime):.0f} s ago")


def _create(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _take_over(path: Path, judged: os.stat_result) -> None:
    """Move a stale lock file aside. Two processes may judge it stale at once: the one that finds it moved
    already, or finds it replaced by a fresh one (another inode), leaves it."""
    aside = path.with_name(f"{path.name}.stale.{HOST}.{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = aside.stat()
    if (moved.st_ino, moved.st_mtime_ns) != (judged.st_ino, judged.st_mtime_ns) and not path.exists():
        os.rename(aside, path)  # a fresh lock taken meanwhile: give it back
    aside.unlink(missing_ok=True)


class Lock:
    """A held lock (see the module's docstring); `kind` says which: "flock" or "lock file (why)"."""

    def __init__(self, path):
        self.path = Path(path)
        self.file = self.path.with_name(self.path.name + ".held")
        self._text, self._stop = None, None
        self._fh = open(self.path, "a+")
        try:
            self._take()
        except BaseException:
            self._fh.close()
            raise

    def _take(self) -> None:
        flocked = _try_flock(self._fh)
        if flocked is False:
            self._fh.seek(0)
            raise Busy(self._fh.read().strip() or "another process")
        if flocked is True and not forced_file():
            found = _read_lock_file(self.file)  # held through the lock file instead (DSS_LOCK=file, another node)
            if found is not None and not _stale(*found):
                raise Busy(_describe(*found))
            self.kind = "flock"
        else:
            self.kind = f"lock file ({'DSS_LOCK=file' if flocked is True else flocked})"
            self._take_file()
        if flocked is True:  # what a second process names when it is refused
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.write(f"pid {os.getpid()} on {HOST} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            self._fh.flush()

    def _take_file(self) -> None:
        text = json.dumps({"pid": os.getpid(), "host": HOST, "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                           "token": secrets.token_hex(8)})
        for _ in range(3):
            if _create(self.file, text):
                self._text, self._stop = text, threading.Event()
                threading.Thread(target=self._beat, args=(self._stop,), name=f"dss lock {self.file}",
                                 daemon=True).start()
                return
            found = _read_lock_file(self.file)
            if found is None:  # released between the two looks
                continue
            if not _stale(*found):
                raise Busy(_describe(*found))
            _take_over(self.file, found[1])
        raise Busy(f"processes taking {self.file} in turn")

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.file)
            except OSError:  # the folder went away; a takeover needs STALE_S without a beat first
                pass

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
            try:
                if self.file.read_text(encoding="utf-8") == self._text:  # not taken over while we were stopped
                    self.file.unlink()
            except FileNotFoundError:
                pass
        self._fh.close()  # closing the file releases its flock


def acquire(path) -> Lock:
    """Take the lock at `path` or raise Busy. A lock file in force (not flock) is said on stderr, once per
    process and reason."""
    lock = Lock(path)
    if lock.kind != "flock" and lock.kind not in _said:
        _said.add(lock.kind)
        print(f"dss: lock in force: {lock.kind}, e.g. {lock.file}", file=sys.stderr, flush=True)
    return lock


def held(path) -> bool:
    """Whether a live process holds the lock at `path`, of either kind."""
    path = Path(path)
    found = _read_lock_file(path.with_name(path.name + ".held"))
    if found is not None and not _stale(*found):
        return True
    if not path.is_file():
        return False
    with open(path, "a+") as fh:
        return _try_flock(fh) is False  # taken here: closing the file lets it go again
