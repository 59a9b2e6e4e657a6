"""The heartbeat of an open run: a daemon thread that renews the run's lease.

A run's row records a lease (:meth:`artiflow.db.MetaStore.create_run`); while the run is open
this thread renews it every ``$ARTIFLOW_HEARTBEAT_SECONDS`` (30 s by default) for
:data:`LEASE_BEATS` intervals. A writer killed with SIGKILL stops renewing, and every reader,
on any machine, sees its run ``lost`` once the lease has run out (:mod:`artiflow.liveness`).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from .errors import ArtiflowError

__all__ = ["LEASE_BEATS", "Heartbeat", "LeaseHolder"]

log = logging.getLogger(__name__)

LEASE_BEATS = 3
"""A lease lasts this many heartbeat intervals: two missed beats are tolerated."""


class LeaseHolder(Protocol):
    """What a heartbeat needs of the metadata store."""

    def renew_lease(self, run_id: str, lease_seconds: float) -> bool: ...


class Heartbeat:
    """Renews ``run_id``'s lease every ``interval`` seconds until :meth:`stop` (or until the
    run is no longer ``running`` in the database)."""

    def __init__(self, meta: LeaseHolder, run_id: str, interval: float) -> None:
        self.meta = meta
        self.run_id = run_id
        self.interval = interval
        self.lease = interval * LEASE_BEATS
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"artiflow-heartbeat-{run_id[:8]}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if not self.meta.renew_lease(self.run_id, self.lease):
                    return  # finished elsewhere: nothing left to keep alive
            except ArtiflowError as err:  # the next beat may get through; say so once per miss
                log.warning("could not renew the lease of run %s: %s", self.run_id, err)

    def stop(self) -> None:
        """Stop renewing; waits a little for a renewal in flight (a late one only moves the
        lease of a run that is no longer ``running``, which changes nothing)."""
        self._stopped.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
