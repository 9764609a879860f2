"""A file system of its own for a session log, that the fault matrix fills or makes read-only.

Real failures, not simulated ones, where the machine allows them (it needs root, as CI is):

- **full**: a small ``tmpfs`` (``size=``); ``fill()`` writes a filler file until the kernel
  answers ENOSPC, so SQLite's next write gets the genuine SQLITE_FULL.
- **read_only**: an ext4 image on a loop device mounted ``errors=remount-ro``;
  ``make_read_only()`` reports a file-system error through ext4's own
  ``/sys/fs/ext4/<dev>/trigger_fs_error``, and the kernel remounts it read-only the way it
  does for a failing disk: every write, to files already open too, gets EROFS. (A plain
  ``mount -o remount,ro`` is refused while the log is open for writing, and ``chattr +i``
  does not stop writes to an open file, so neither would test anything.)

Without root (or without loop devices) ``unavailable()`` says why, and the matrix reports the
row as not run rather than pretending. Files committed before the fault are read back from a
copy (``copy_out``): the copy's WAL is replayed by SQLite when it is opened, as after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Literal

__all__ = ["DiskKind", "LogDisk", "LogDiskError"]

DiskKind = Literal["full", "read_only"]
_TMPFS_SIZE = "4m"  # room for a short session's log; the filler takes the rest
_EXT4_IMAGE_BYTES = 16 * 1024 * 1024
_CHUNK = b"\0" * (256 * 1024)


class LogDiskError(RuntimeError):
    """The file system could not be made, changed or removed."""


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LogDiskError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")


class LogDisk:
    """A mount at ``root/mnt``; a context manager that always unmounts."""

    def __init__(self, root: Path, kind: DiskKind) -> None:
        self.root = root
        self.kind = kind
        self.mount_point = root / "mnt"
        self._image = root / "log-disk.img"
        self._mounted = False
        self.filled_bytes = 0

    @staticmethod
    def unavailable(kind: DiskKind) -> str | None:
        """Why this machine cannot make the file system (None: it can)."""
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            return "mounting a file system needs root (CI runs as root)"
        needed = ["mount", "umount"] + (["mkfs.ext4"] if kind == "read_only" else [])
        missing = [c for c in needed if shutil.which(c) is None]
        if missing:
            return f"missing {', '.join(missing)}"
        if kind == "read_only" and not Path("/dev/loop-control").exists():
            return "no loop devices (/dev/loop-control)"
        return None

    @property
    def log_path(self) -> Path:
        return self.mount_point / "session-log.sqlite3"

    def __enter__(self) -> LogDisk:
        self.mount_point.mkdir(parents=True, exist_ok=True)
        if self.kind == "full":
            _run("mount", "-t", "tmpfs", "-o", f"size={_TMPFS_SIZE},mode=0700", "tmpfs",
                 str(self.mount_point))  # fmt: skip
        else:
            with self._image.open("wb") as f:
                f.truncate(_EXT4_IMAGE_BYTES)
            _run("mkfs.ext4", "-q", "-F", str(self._image))
            _run("mount", "-o", "loop,errors=remount-ro", str(self._image), str(self.mount_point))
        self._mounted = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount()

    def unmount(self) -> None:
        """Safe to call twice. A lazy unmount if a file is still open (a killed writer)."""
        if not self._mounted:
            return
        self._mounted = False
        try:
            _run("umount", str(self.mount_point))
        except LogDiskError:
            _run("umount", "-l", str(self.mount_point))
        with contextlib.suppress(FileNotFoundError):
            self._image.unlink()

    def fill(self) -> int:
        """Write until the file system is full; the bytes written. ENOSPC is the point."""
        path = self.mount_point / "filler"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                try:
                    n = os.write(fd, _CHUNK)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise LogDiskError(f"filling the log's disk failed: {e}") from e
                    break
                self.filled_bytes += n
            # Smaller writes take what a large one could not (a partial page).
            for size in (4096, 512, 1):
                with contextlib.suppress(OSError):
                    while True:
                        self.filled_bytes += os.write(fd, b"\0" * size)
        finally:
            os.close(fd)
        return self.filled_bytes

    def free(self) -> None:
        """Remove the filler: the disk has room again (nothing else changes)."""
        with contextlib.suppress(FileNotFoundError):
            (self.mount_point / "filler").unlink()

    def make_read_only(self) -> None:
        """ext4 reports an error and remounts itself read-only, as for a failing disk."""
        dev = self._loop_device()
        trigger = Path("/sys/fs/ext4") / dev / "trigger_fs_error"
        try:
            trigger.write_text("laserguard fault matrix: log disk read-only\n")
        except OSError as e:
            raise LogDiskError(f"cannot trigger the file-system error at {trigger}: {e}") from e
        probe = self.mount_point / "probe"
        try:
            probe.write_text("x")
        except OSError as e:
            if e.errno == errno.EROFS:
                return
            raise LogDiskError(f"the log's disk answered {e} instead of EROFS") from e
        raise LogDiskError("the log's disk still takes writes after the error")

    def _loop_device(self) -> str:
        done = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.mount_point)],
            capture_output=True,
            text=True,
            check=False,
        )
        source = done.stdout.strip()
        if done.returncode != 0 or not source:
            raise LogDiskError(f"cannot tell which device is mounted at {self.mount_point}")
        return Path(source).name

    def copy_out(self, dest_dir: Path) -> Path:
        """Copy the log (and its WAL) out of the mount; the copy's path."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal"):
            src = Path(f"{self.log_path}{suffix}")
            if src.exists():
                shutil.copyfile(src, dest_dir / f"{self.log_path.name}{suffix}")
        return dest_dir / self.log_path.name
