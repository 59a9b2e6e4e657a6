"""The one boundary where remote storage backends' exceptions become artiflow errors.

fsspec and its plugins (s3fs, botocore, gcsfs, aiohttp, urllib for HTTP) raise their own
exceptions. :func:`backend_errors` is the one place they become :mod:`artiflow.errors`
(``raise ... from err``), for reference resolvers and blob stores alike, the way httpx maps
transport errors in one table. (The database's boundary is :mod:`artiflow.db.engine`.)
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import sys
import urllib.error
from collections.abc import Iterator

from .errors import ArtiflowError, MissingDependency, SourceNotFound, StoreError

__all__ = ["backend_errors", "local_write_errors"]

#: errors of the local disk being written, never of the remote side being read
LOCAL_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

_OWN_MODULES = frozenset({"artiflow", "builtins", "__main__"}) | sys.stdlib_module_names


def _top_module(name: object) -> str:
    return str(name or "").split(".", 1)[0]


def _from_backend(err: BaseException) -> bool:
    """True if ``err`` is a third-party type, or was raised in or through third-party code.

    A backend (fsspec, s3fs, botocore, gcsfs, an fsspec plugin...) may raise a builtin such as
    ``TypeError`` from its own code; the traceback tells it apart from a bug in artiflow.
    """
    if _top_module(type(err).__module__) not in _OWN_MODULES:
        return True
    tb = err.__traceback__
    while tb is not None:
        if _top_module(tb.tb_frame.f_globals.get("__name__")) not in _OWN_MODULES:
            return True
        tb = tb.tb_next
    return False


@contextlib.contextmanager
def backend_errors(subject: str, *, writing: bool = False) -> Iterator[None]:
    """Translate a backend's exceptions raised inside the block; ``subject`` names what was
    being reached (a URI, ``blob ab12... in s3://bucket/store``).

    Artiflow's own errors pass unchanged. Not-found errors become :class:`SourceNotFound`;
    ``OSError``, ``ValueError`` (which backends raise for bad listings, e.g. fsspec refusing a
    key that would escape the download folder) and ``http.client`` errors (a truncated body)
    become :class:`StoreError`; any other exception becomes :class:`StoreError` when it comes
    from a backend, and is left alone when it is a bug here. ``writing``: the store itself is
    being written or probed, so a missing bucket or folder is a :class:`StoreError` too.
    """
    try:
        yield
    except ArtiflowError:
        raise
    except urllib.error.HTTPError as err:
        if err.code in (404, 410):
            raise SourceNotFound(f"{subject}: not found (HTTP {err.code})") from err
        raise StoreError(f"{subject}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise StoreError(f"{subject}: cannot connect ({err.reason})") from err
    except (FileNotFoundError, NotADirectoryError) as err:
        if writing:
            raise StoreError(f"{subject}: no such bucket or folder ({err})") from err
        raise SourceNotFound(f"{subject}: no such object or prefix ({err})") from err
    except PermissionError as err:
        raise StoreError(f"{subject}: access denied ({err})") from err
    except OSError as err:
        if err.errno not in LOCAL_DISK_FULL:
            raise StoreError(f"{subject}: {type(err).__name__}: {err}") from err
        where = err.filename or "the local disk"
        raise StoreError(f"cannot write {where}: {err.strerror} ({subject})") from err
    except ImportError as err:
        raise MissingDependency(f"{subject}: a backend is missing: {err}") from err
    except (ValueError, http.client.HTTPException) as err:
        raise StoreError(f"{subject}: {type(err).__name__}: {err}") from err
    except Exception as err:
        if _from_backend(err):
            raise StoreError(f"{subject}: {type(err).__name__}: {err}") from err
        raise


@contextlib.contextmanager
def local_write_errors(path: str) -> Iterator[None]:
    """A full, over-quota or read-only local disk while writing ``path`` is a
    :class:`StoreError` that names ``path`` (not the store being read)."""
    try:
        yield
    except OSError as err:
        if err.errno in LOCAL_DISK_FULL:
            raise StoreError(f"cannot write {path}: {err.strerror}") from err
        raise
