"""The one exception tree artiflow raises on purpose.

Every error is an :class:`ArtiflowError`; most are also the builtin that fits, so
``except KeyError`` and ``except ValueError`` keep working for callers who expect them::

    ArtiflowError
    ├── InvalidName (ValueError)           bad artifact name, type or alias
    ├── InvalidMetadata (ValueError)       metadata not JSON-safe, NaN/inf, too many keys
    ├── InvalidPath (ValueError)           entry path escapes its root or is malformed
    ├── EntryConflict (ValueError)         same path added twice with other content
    ├── EntryNotFound (KeyError)           no entry at that path
    ├── SourceNotFound (FileNotFoundError) a local file, directory or referenced object is missing
    ├── SourceChanged                      a file changed between add and upload
    ├── UnsupportedScheme (ValueError)     no resolver for a URI's scheme
    ├── UnsafeReference (ValueError)       a URI carries credentials or a signature
    ├── TooManyObjects (ValueError)        a prefix holds more than max_objects
    ├── MissingDependency (ImportError)    an optional backend is not installed
    ├── ArtifactNotFound (KeyError)        no artifact, version or alias by that reference
    ├── TypeMismatch (ValueError)          a name owned by another type, or use_artifact(type=...)
    ├── ArtifactStateError                 operation not allowed in the artifact's state
    ├── DistributedError                   upsert/finish of a distributed artifact refused
    ├── InvalidArgument (ValueError, TypeError) an argument of the wrong kind or value
    ├── InvalidSpec (TypeError)            a step's inputs/outputs declaration is malformed
    ├── EmptyOutput (ValueError)           a step returned without filling a declared output
    ├── StoreError (OSError)               blob store unreachable or refusing, local disk full
    ├── TargetConflict (FileExistsError)   a download folder holds a link, file or folder in the way
    ├── CorruptedBlob                      bytes do not match their digest
    ├── DatabaseError                      metadata store unreachable or failing
    └── SchemaOutOfDate                    database needs ``artiflow db upgrade``
"""

from __future__ import annotations

__all__ = [
    "ArtifactNotFound",
    "ArtifactStateError",
    "ArtiflowError",
    "CorruptedBlob",
    "DatabaseError",
    "DistributedError",
    "EmptyOutput",
    "EntryConflict",
    "EntryNotFound",
    "InvalidArgument",
    "InvalidMetadata",
    "InvalidName",
    "InvalidPath",
    "InvalidSpec",
    "MissingDependency",
    "SchemaOutOfDate",
    "SourceChanged",
    "SourceNotFound",
    "StoreError",
    "TargetConflict",
    "TooManyObjects",
    "TypeMismatch",
    "UnsafeReference",
    "UnsupportedScheme",
]


class ArtiflowError(Exception):
    """Base of every error artiflow raises on purpose."""

    def __str__(self) -> str:
        # KeyError quotes its message; an artiflow message reads as written.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidName(ArtiflowError, ValueError):
    """An artifact name, type or alias breaks the naming rules."""


class InvalidMetadata(ArtiflowError, ValueError):
    """Metadata is not JSON-serialisable, holds NaN/inf, or has too many keys."""


class InvalidPath(ArtiflowError, ValueError):
    """An entry path is absolute, escapes its root, or has empty, '.' or '..' segments."""


class EntryConflict(ArtiflowError, ValueError):
    """The same entry path was added twice with different content."""


class EntryNotFound(ArtiflowError, KeyError):
    """No manifest entry at the given path."""


class SourceNotFound(ArtiflowError, FileNotFoundError):
    """A local file or directory, or a referenced remote object, does not exist."""


class SourceChanged(ArtiflowError):
    """A file's content changed between the time it was added and the upload."""


class UnsupportedScheme(ArtiflowError, ValueError):
    """No resolver (and no fsspec implementation) knows the URI's scheme."""


class UnsafeReference(ArtiflowError, ValueError):
    """A reference URI carries credentials or a signed query string."""


class TooManyObjects(ArtiflowError, ValueError):
    """A prefix or directory expands to more objects than ``max_objects``."""


class MissingDependency(ArtiflowError, ImportError):
    """An optional backend is needed but not installed."""


class ArtifactNotFound(ArtiflowError, KeyError):
    """No artifact, version or alias matches the reference."""


class TypeMismatch(ArtiflowError, ValueError):
    """A name already belongs to another type, or a used artifact has the wrong type."""


class ArtifactStateError(ArtiflowError):
    """The operation is not allowed in the artifact's current state (e.g. not yet logged)."""


class DistributedError(ArtiflowError):
    """A distributed artifact upsert or finish was refused."""


class InvalidArgument(ArtiflowError, ValueError, TypeError):
    """An argument has the wrong kind or value (a mode, an object :meth:`add` cannot store)."""


class InvalidSpec(ArtiflowError, TypeError):
    """An ``inputs`` or ``outputs`` entry has the wrong shape, an unknown key or a bad value."""


class EmptyOutput(ArtiflowError, ValueError):
    """A step's function returned without filling one of its outputs."""


class StoreError(ArtiflowError, OSError):
    """The blob store is unreachable or refused an operation."""


class TargetConflict(ArtiflowError, FileExistsError):
    """A download folder holds something in the way: a file or a symbolic link where the
    artifact has a folder, a folder where it has a file, or the root is a file."""


class CorruptedBlob(ArtiflowError):
    """Bytes read from a store, cache or source do not match their recorded digest."""


class DatabaseError(ArtiflowError):
    """The metadata database is unreachable or failed."""


class SchemaOutOfDate(DatabaseError):
    """The metadata database's schema is older than this artiflow; run ``artiflow db upgrade``."""
