"""The output folder as a directory file descriptor: every read, write, rename and delete that
``build`` and ``check`` make inside it, none of which follows a symbolic link.

Paths are plain relative POSIX paths (``routes/x.py``). Each is walked one component at a
time from the folder's own descriptor with ``O_NOFOLLOW``: a symbolic link, or anything that
is not a folder where a folder is expected, or not a regular file where a file is expected,
raises :class:`UnsafePath`, and nothing is read through it, written into it or deleted
behind it. The folder itself must not be a symbolic link either (its parents may be: they
are resolved once, when it is opened). While a command works in the folder it holds an
exclusive ``flock`` on the folder's descriptor (no lock file is created): a second
``build`` or ``check`` of the same folder waits for the first to finish, as cargo does.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, Callable

MAX_FILE_BYTES = 256 * 1024 * 1024
"""A file in the output folder larger than this is not read (``check`` and ``build`` treat it
as not s402gen's): nothing s402gen generates comes near it, and reading it would be slow."""

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


class UnsafePath(Exception):
    """``path`` (relative to the output folder; ``.`` is the folder) cannot be used safely:
    ``reason`` says why (a symbolic link, a folder, a device, a FIFO, too large)."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path} {reason}")


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a FIFO"
    if stat.S_ISREG(mode):
        return "is a file"
    return "is not a regular file"


def _parts(relative: str) -> list[str]:
    parts = relative.split("/")
    if not relative or any(p in ("", ".", "..") for p in parts):
        raise UnsafePath(relative, "is not a plain relative path")
    return parts


class OutputFolder:
    """An open output folder (see the module docstring); use :meth:`open` or :meth:`locked`.

    ``path`` is the folder as given (for messages); ``fd`` its directory descriptor.
    """

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd
        self.created = False
        self._dirs: dict[str, int] = {"": fd}

    @classmethod
    def open(cls, path: Path, *, create: bool) -> OutputFolder | None:
        """Open ``path``; ``None`` when it does not exist and ``create`` is false.

        Raises :class:`UnsafePath` (path ``.``) when ``path`` is a symbolic link or not a
        folder, ``OSError`` when it cannot be created or opened.
        """
        created = False
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(path)
                created = True
            except FileExistsError:
                pass
        try:
            fd = os.open(path, _DIR)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePath(".", _kind(os.lstat(path).st_mode)) from None
            raise
        folder = cls(path, fd)
        folder.created = created
        return folder

    def lock(self, waiting: Callable[[], None] | None = None) -> OutputFolder:
        """Take the folder's exclusive lock, calling ``waiting`` once if another process
        holds it, then waiting for it. Returns the folder that was locked: a new one when
        the folder was replaced or removed meanwhile (this one is then closed)."""
        folder = self
        while True:
            try:
                fcntl.flock(folder.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting is not None:
                    waiting()
                    waiting = None
                fcntl.flock(folder.fd, fcntl.LOCK_EX)
            if folder._still_there():
                return folder
            folder.close()
            reopened = OutputFolder.open(folder.path, create=True)
            assert reopened is not None
            folder = reopened

    def _still_there(self) -> bool:
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        held = os.fstat(self.fd)
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def close(self) -> None:
        """Release the lock and every descriptor (idempotent)."""
        for fd in self._dirs.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._dirs = {}

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking -------------------------------------------------------------------------

    def _dir(self, relative: str, create: bool) -> int | None:
        """The descriptor of folder ``relative`` (``""``: the root), walked without following
        links; ``None`` when a part is absent and not ``create``."""
        if relative in self._dirs:
            return self._dirs[relative]
        head, _, name = relative.rpartition("/")
        parent = self._dir(head, create)
        if parent is None:
            return None
        try:
            fd = os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(name, dir_fd=parent)
            except FileExistsError:
                pass
            return self._dir(relative, create)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                raise UnsafePath(relative, _kind(mode)) from None
            raise
        self._dirs[relative] = fd
        return fd

    def _forget(self, relative: str) -> None:
        """Close the descriptors kept for folder ``relative`` and the folders in it (it is
        about to be moved or removed)."""
        for key in [k for k in self._dirs if k == relative or k.startswith(relative + "/")]:
            os.close(self._dirs.pop(key))

    def _parent(self, relative: str, create: bool = False) -> tuple[int | None, str]:
        parts = _parts(relative)
        return self._dir("/".join(parts[:-1]), create), parts[-1]

    # -- operations ----------------------------------------------------------------------

    def open_read(self, relative: str) -> BinaryIO | None:
        """Regular file ``relative`` open for reading at its start; ``None`` when it (or a
        folder on its way) does not exist. Raises :class:`UnsafePath` for a link, folder,
        FIFO, device, or a file over :data:`MAX_FILE_BYTES`; never blocks on a FIFO."""
        parent, name = self._parent(relative)
        if parent is None:
            return None
        try:
            fd = os.open(name, _READ, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                raise UnsafePath(relative, _kind(mode)) from None
            raise
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            os.close(fd)
            if stat.S_ISREG(info.st_mode):
                raise UnsafePath(relative, f"is larger than {MAX_FILE_BYTES} bytes")
            raise UnsafePath(relative, _kind(info.st_mode))
        return os.fdopen(fd, "rb")

    def read(self, relative: str) -> bytes | None:
        """The bytes of regular file ``relative`` (see :meth:`open_read`, whose errors it
        raises); ``None`` when it does not exist."""
        handle = self.open_read(relative)
        if handle is None:
            return None
        with handle:
            return handle.read(MAX_FILE_BYTES + 1)

    def kind(self, relative: str) -> str | None:
        """``None`` when ``relative`` is absent, ``"file"`` for a regular file, else the
        reason it is not one (``is a symbolic link``...). Raises :class:`UnsafePath` when a
        folder on its way is unsafe."""
        parent, name = self._parent(relative)
        if parent is None:
            return None
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None
        return "file" if stat.S_ISREG(mode) else _kind(mode)

    def create(self, relative: str) -> BinaryIO:
        """A new regular file ``relative`` open for writing (its folders are made); raises
        ``FileExistsError`` when something is already there."""
        parent, name = self._parent(relative, create=True)
        assert parent is not None
        return os.fdopen(os.open(name, _CREATE, 0o644, dir_fd=parent), "wb")

    def write(self, relative: str, data: bytes) -> None:
        """Create ``relative`` holding ``data`` and flush it to disk."""
        with self.create(relative) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def move(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` (replacing a file there, never through a link)."""
        source_dir, source_name = self._parent(source)
        target_dir, target_name = self._parent(target, create=True)
        if source_dir is None:
            raise FileNotFoundError(source)
        os.rename(source_name, target_name, src_dir_fd=source_dir, dst_dir_fd=target_dir)

    def move_folder(self, source: str, target: str) -> bool:
        """Rename folder ``source`` to ``target`` (its parent folders made) when nothing is
        at ``target``; ``False``, moving nothing, when something is (even an empty folder;
        one made by another process between the check and the rename is replaced: it held
        nothing), or ``source`` is not a folder. Raises :class:`UnsafePath` for a link on
        the way."""
        source_dir, source_name = self._parent(source)
        if source_dir is None or self.kind(target) is not None:
            return False
        target_dir, target_name = self._parent(target, create=True)
        try:
            if not stat.S_ISDIR(
                os.stat(source_name, dir_fd=source_dir, follow_symlinks=False).st_mode
            ):
                return False
            os.rename(source_name, target_name, src_dir_fd=source_dir, dst_dir_fd=target_dir)
        except OSError:  # a folder appeared there since, not empty; a file
            return False
        self._forget(source)  # its descriptors would answer for the old paths
        return True

    def unlink(self, relative: str) -> None:
        """Delete file ``relative`` (a link is removed itself, never what it points to)."""
        parent, name = self._parent(relative)
        if parent is not None:
            os.unlink(name, dir_fd=parent)

    def prune(self, relative: str) -> None:
        """Remove the folders of file ``relative`` that are now empty, deepest first."""
        parts = _parts(relative)[:-1]
        while parts:
            folder = "/".join(parts)
            parent = self._dir("/".join(parts[:-1]), False)
            if parent is None:
                return
            try:
                os.rmdir(parts[-1], dir_fd=parent)
            except OSError:
                return
            fd = self._dirs.pop(folder, None)
            if fd is not None:
                os.close(fd)
            parts.pop()

    def remove_tree(self, name: str) -> None:
        """Delete folder ``name`` (directly in the output folder) and everything in it,
        without following links; nothing when it is not a real folder."""
        if self.kind(name) != "is a folder":
            return
        self._forget(name)
        shutil.rmtree(name, dir_fd=self.fd)

    def names(self) -> list[str]:
        """The entries directly in the output folder, sorted."""
        return sorted(os.listdir(self.fd))

    def files(self, limit: int, under: str = "") -> list[str]:
        """Relative paths of every entry but real folders (links are listed, never followed)
        in the output folder or its folder ``under``, at most ``limit`` of them (and at most
        ``limit`` folders visited), sorted folder by folder."""
        found: list[str] = []
        pending = [under]
        visited = 0
        while pending and len(found) < limit and visited < limit:
            folder = pending.pop(0)
            visited += 1
            fd = self._dir(folder, False)
            if fd is None:
                continue
            with os.scandir(fd) as entries:
                listed = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in entries)
            for name, is_folder in listed:
                path = f"{folder}/{name}" if folder else name
                if is_folder:
                    pending.append(path)
                elif len(found) < limit:
                    found.append(path)
        return found

    def is_empty(self) -> bool:
        """True when the folder has no entry at all."""
        return not os.listdir(self.fd)

    def sync(self) -> None:
        """Flush what was written in the folder's file system to disk (``syncfs`` on Linux,
        else ``sync``): once per build, before its journal says the staged files are final."""
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(self.fd) == 0:
                return
        except (OSError, AttributeError):
            pass
        os.sync()
