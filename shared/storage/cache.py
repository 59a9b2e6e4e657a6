"""The local download cache: verified blobs by key, bounded in size, evicted least recently used.

A blob enters the cache only after its bytes were checked against its digest. The index (SQLite
next to the blobs) remembers each file's ``(inode, size, mtime_ns)`` at that moment, so a hit costs
one ``stat``; a cached file that changed since (say, edited through a hard link) no longer matches
and is fetched again instead of being handed out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence

from ..config import cache_dir, cache_max_bytes
from ..errors import StoreError

__all__ = ["BlobCache", "CacheRow"]

log = logging.getLogger(__name__)
#: ``(key, size, inode, mtime_ns, md5, last_used)``
CacheRow = tuple[str, int, int, int, str, float]


def _busy(err: sqlite3.OperationalError) -> bool:
    return "locked" in str(err) or "busy" in str(err)


class BlobCache:
    """Files under ``<root>/<kind>/<ab>/<cdef...>`` indexed in ``<root>/index.db``."""

    def __init__(
        self, root: str | None = None, max_bytes: int | None = None, *, timeout: float = 60.0
    ) -> None:
        """``timeout``: seconds to wait for another process holding the index."""
        self.root = os.path.abspath(root or cache_dir())
        self.max_bytes = cache_max_bytes() if max_bytes is None else max_bytes
        self.timeout = timeout
        self._local = threading.local()
        try:
            os.makedirs(self.root, exist_ok=True)
            self._create()
        except sqlite3.OperationalError as err:
            if _busy(err):
                raise StoreError(
                    f"the download cache at {self.root} stayed locked by another process for "
                    f"{self.timeout:g} s ({err}); is a process holding it stuck?"
                ) from err
            raise self._unusable(err) from err
        except (OSError, sqlite3.Error) as err:
            raise self._unusable(err) from err

    def _unusable(self, err: BaseException) -> StoreError:
        return StoreError(
            f"cannot use the download cache at {self.root} ({err}); "
            "point ARTIFLOW_CACHE_DIR at a writable folder"
        )

    def _create(self) -> None:
        """Create the index, once, however many processes open a fresh cache at the same time
        (SQLite does not wait on its busy timeout for everything a first open does)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with self._db() as db:
                    db.execute(
                        "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, size INTEGER,"
                        " inode INTEGER, mtime_ns INTEGER, md5 TEXT, last_used REAL)"
                    )
                    db.execute("CREATE INDEX IF NOT EXISTS entries_lru ON entries(last_used)")
                return
            except sqlite3.OperationalError as err:
                if not _busy(err) or time.monotonic() > deadline:
                    raise
                self.close()
                time.sleep(0.01 + random.random() * 0.05)

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(os.path.join(self.root, "index.db"), timeout=self.timeout)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection to the index (a later call opens another)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    @property
    def lock_dir(self) -> str:
        """Where download folders' lock files live (see :func:`artiflow.checkout.folder_lock`)."""
        return os.path.join(self.root, "locks")

    def path_for(self, key: str) -> str:
        kind, _, name = key.partition("/")
        return os.path.join(self.root, kind, name[:2], name[2:])

    def lookup_many(self, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``key → (path, content md5)`` for every key held and unchanged since it was cached."""
        found: dict[str, tuple[str, str]] = {}
        stale: list[tuple[str, int, int, int]] = []
        db = self._db()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT key, size, inode, mtime_ns, md5 FROM entries WHERE key IN ({marks})",
                chunk,
            ).fetchall()
            for key, size, inode, mtime_ns, md5 in rows:
                path = self.path_for(key)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    stale.append((key, size, inode, mtime_ns))
                    continue
                if (st.st_size, st.st_ino, st.st_mtime_ns) == (size, inode, mtime_ns):
                    found[key] = (path, md5)
                else:
                    stale.append((key, size, inode, mtime_ns))
        now = time.time()
        with db:
            if found:
                db.executemany(
                    "UPDATE entries SET last_used=? WHERE key=?", [(now, k) for k in found]
                )
            if stale:
                # Only the row that was checked: another process may have just placed (and be
                # about to record) a fresh file for the key. The changed file itself stays
                # until the next fetch of the key replaces it; it is never handed out.
                log.warning("dropping %d changed or missing cache entries", len(stale))
                db.executemany(
                    "DELETE FROM entries WHERE key=? AND size=? AND inode=? AND mtime_ns=?",
                    stale,
                )
        return found

    def lookup(self, key: str) -> tuple[str, str] | None:
        return self.lookup_many([key]).get(key)

    def temp_path(self) -> str:
        folder = os.path.join(self.root, "tmp")
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"{os.getpid()}-{threading.get_ident()}-{time.time_ns()}")

    def place(self, key: str, verified_file: str, md5: str) -> CacheRow:
        """Move a verified file into place; the row must then go to :meth:`record`.

        Until it is recorded the file is invisible to lookups (a crash in between leaves an
        orphan file that the next insert of the same key simply replaces).
        """
        path = self.path_for(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.chmod(verified_file, 0o444)
        os.replace(verified_file, path)
        st = os.stat(path)
        return (key, st.st_size, st.st_ino, st.st_mtime_ns, md5, time.time())

    def record(self, rows: Iterable[CacheRow]) -> None:
        """Index placed files, in one transaction."""
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)

    def insert(self, key: str, verified_file: str, md5: str) -> str:
        """Move a file whose content was just verified into the cache; returns its path."""
        row = self.place(key, verified_file, md5)
        self.record([row])
        return self.path_for(key)

    def total_bytes(self) -> int:
        row = self._db().execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()
        return int(row[0])

    def prune(self, max_bytes: int | None = None, keep: Iterable[str] = ()) -> tuple[int, int]:
        """Evict least recently used entries until the cache holds at most ``max_bytes``.

        Returns ``(files removed, bytes freed)``. Keys in ``keep`` are never evicted.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        protected = set(keep)
        total = self.total_bytes()
        removed = freed = 0
        if total <= limit:
            return 0, 0
        db = self._db()
        victims: list[tuple[str, int]] = []
        for key, size in db.execute("SELECT key, size FROM entries ORDER BY last_used, key"):
            if total <= limit:
                break
            if key in protected:
                continue
            victims.append((key, size))
            total -= size
        with db:
            db.executemany("DELETE FROM entries WHERE key=?", [(k,) for k, _ in victims])
        for key, size in victims:
            self._unlink(self.path_for(key))
            removed += 1
            freed += size
        return removed, freed

    @staticmethod
    def _unlink(path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
