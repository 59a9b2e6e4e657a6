"""A persistent cache of file MD5s, keyed by ``(absolute path, inode, size, mtime_ns)``.

Re-adding an unchanged tree then costs one ``stat`` per file and a bulk SQLite lookup. The
cache is a single SQLite file (WAL, busy timeout) at ``$ARTIFLOW_HASH_CACHE`` or
``<user cache dir>/artiflow/hashes.db``; any number of threads and processes may share it.

The cache is an accelerator, never a source of failure: a corrupt, locked or unwritable
database logs one warning and the caller carries on as if there were no cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence

from ..config import hash_cache_path

__all__ = ["HashCache", "default_hash_cache"]

log = logging.getLogger(__name__)

_CHUNK = 400  # keys per lookup query: 2,000 bound variables, well under SQLite's limit
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_md5 (
    path     TEXT PRIMARY KEY,
    inode    INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    md5      TEXT NOT NULL
) WITHOUT ROWID
"""

_LOOKUP = (
    "WITH k(n, path, inode, size, mtime_ns) AS (VALUES {values}) "
    "SELECT k.n, f.md5 FROM k JOIN file_md5 AS f ON f.path = k.path AND f.inode = k.inode "
    "AND f.size = k.size AND f.mtime_ns = k.mtime_ns"
)


def _transient(err: sqlite3.Error) -> bool:
    """A lock held too long by another writer: skip this operation, keep the cache."""
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """One transaction that is rolled back on any exception (and never nested: one left open
    by an interrupted operation is rolled back first)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _is_text(path: str) -> bool:
    try:
        path.encode()
    except UnicodeEncodeError:
        return False
    return True


def _text_rows(paths: Sequence[str]) -> Sequence[int]:
    """Indices of the paths SQLite can store as text. A name that is not UTF-8 (decoded with
    ``surrogateescape``) is never cached: it misses, and is hashed every time."""
    try:
        "\0".join(paths).encode()
    except UnicodeEncodeError:
        return [i for i, path in enumerate(paths) if _is_text(path)]
    return range(len(paths))


#: what binding an odd key can raise (a path that is not UTF-8, an inode past 2**63)
_UNBINDABLE = (ValueError, OverflowError, TypeError)


class HashCache:
    """MD5s of local files, valid while a file keeps its path, inode, size and mtime.

    Thread-safe (one connection behind a lock, re-opened after ``fork``) and process-safe
    (SQLite WAL with a busy timeout). Lookups and inserts are batched into one transaction.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 10.0):
        self.path = os.fspath(path) if path is not None else hash_cache_path()
        self._timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._disabled = False

    def __repr__(self) -> str:
        state = "disabled" if self._disabled else "enabled"
        return f"HashCache({self.path!r}, {state})"

    @property
    def enabled(self) -> bool:
        """False once the database proved corrupt or unwritable (then every lookup misses)."""
        return not self._disabled

    # -- connection ---------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection | None:
        """The open connection (lock held by the caller), or None when the cache is disabled."""
        if self._disabled:
            return None
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # A connection inherited across fork() must not be used, nor closed, in the child.
        self._conn = None
        conn: sqlite3.Connection | None = None
        try:
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL commits need no fsync
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as err:
            if conn is not None:
                conn.close()
            self._disable(err)
            return None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _disable(self, err: BaseException) -> None:
        log.warning(
            "hash cache %s is unusable (%s: %s); hashing without a cache",
            self.path,
            type(err).__name__,
            err,
        )
        self._disabled = True
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                log.debug("closing the hash cache failed", exc_info=True)
        self._conn = None

    def _failed(self, err: sqlite3.Error, what: str) -> None:
        if _transient(err):
            log.warning("hash cache %s is busy; %s skipped (%s)", self.path, what, err)
            return
        self._disable(err)

    # -- operations ---------------------------------------------------------------------------
    def get_many(
        self, paths: Sequence[str], stat_keys: Sequence[Sequence[int]]
    ) -> list[str | None]:
        """The cached MD5 of each path whose ``(inode, size, mtime_ns)`` still matches, else None.

        ``stat_keys[i]`` starts with ``(inode, size, mtime_ns)``; further items are ignored.
        One query per chunk of paths joins them with the table on the whole key, so only
        hits come back.
        """
        out: list[str | None] = [None] * len(paths)
        rows = _text_rows(paths)
        if not rows:
            return out
        with self._lock:
            conn = self._connection()
            if conn is None:
                return out
            try:
                with _transaction(conn):  # one read snapshot for every chunk
                    for start in range(0, len(rows), _CHUNK):
                        chunk = rows[start : start + _CHUNK]
                        params: list[object] = []
                        append = params.append
                        for n in chunk:
                            key = stat_keys[n]
                            append(n)
                            append(paths[n])
                            append(key[0])
                            append(key[1])
                            append(key[2])
                        query = _LOOKUP.format(values=",".join(["(?,?,?,?,?)"] * len(chunk)))
                        for n, md5 in conn.execute(query, params):
                            out[n] = md5
            except sqlite3.Error as err:
                self._failed(err, "lookup")
                return [None] * len(paths)
            except _UNBINDABLE as err:
                log.warning(
                    "hash cache %s: lookup skipped (%s: %s)", self.path, type(err).__name__, err
                )
                return [None] * len(paths)
        return out

    def get(self, path: str, inode: int, size: int, mtime_ns: int) -> str | None:
        """The cached MD5 of one file, or None."""
        return self.get_many([path], [(inode, size, mtime_ns)])[0]

    def put_many(self, rows: Iterable[tuple[str, int, int, int, str]]) -> None:
        """Record ``(path, inode, size, mtime_ns, md5)`` rows in one transaction."""
        rows = list(rows)
        keep = _text_rows([row[0] for row in rows])
        if len(keep) != len(rows):
            rows = [rows[i] for i in keep]
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            if conn is None:
                return
            try:
                with _transaction(conn, "BEGIN IMMEDIATE"):
                    conn.executemany("INSERT OR REPLACE INTO file_md5 VALUES (?, ?, ?, ?, ?)", rows)
            except sqlite3.Error as err:
                self._failed(err, "update")
            except _UNBINDABLE as err:
                log.warning(
                    "hash cache %s: update skipped (%s: %s)", self.path, type(err).__name__, err
                )

    def clear(self) -> None:
        """Forget every cached hash."""
        with self._lock:
            conn = self._connection()
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM file_md5")
            except sqlite3.Error as err:
                self._failed(err, "clear")

    def __len__(self) -> int:
        with self._lock:
            conn = self._connection()
            if conn is None:
                return 0
            try:
                row = conn.execute("SELECT count(*) FROM file_md5").fetchone()
            except sqlite3.Error as err:
                self._failed(err, "count")
                return 0
        return int(row[0])

    def close(self) -> None:
        """Close the connection; the next operation opens it again."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


_default: HashCache | None = None
_default_lock = threading.Lock()


def default_hash_cache() -> HashCache:
    """The process-wide cache at :func:`artiflow.config.hash_cache_path` (re-made when it
    changes)."""
    global _default
    path = hash_cache_path()
    with _default_lock:
        if _default is None or _default.path != path:
            if _default is not None:
                _default.close()
            _default = HashCache(path)
        return _default
