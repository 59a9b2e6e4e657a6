"""The metadata store: artifacts, versions, aliases, runs, usage and distributed parts.

One class over the query modules of this package, each holding the SQL of one topic:
:mod:`.runs`, :mod:`.versions`, :mod:`.commits` (the commit transaction), :mod:`.lineage`
(closures) and :mod:`.distributed`; :mod:`.engine` owns connections, transactions and the
translation of database errors.
"""

from __future__ import annotations

from .distributed import DistributedQueries
from .lineage import LineageQueries
from .runs import RunQueries

__all__ = ["MetaStore"]


class MetaStore(RunQueries, LineageQueries, DistributedQueries):
    """Reads and writes artiflow's tables; every write is one short transaction.

    :param url: an SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``); a new
        database is created at the current schema; an older one is upgraded when it opens if
        its revision is in ``migrate.AUTOMATIC_FROM``, else refused with the command that
        upgrades it.
    """
