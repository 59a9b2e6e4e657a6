"""Is the process that owns a run still there? Its lease, and on its own host its pid.

An open run records its host, its pid, the *pid scope* it ran in and a lease that a heartbeat
thread renews (:mod:`artiflow.heartbeat`). Readers on any machine see a ``running`` run whose
lease has expired as ``lost``; a reader in the same pid scope also sees it ``lost`` as soon as
its process is gone. The pid scope is the host's boot and pid namespace (Linux), so a
container that shares its host's name but not its processes never judges a pid it cannot see.
Nothing is written: a run that comes back (a paused process, a database outage) renews its
lease and reads as ``running`` again.
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "LOST",
    "RUNNING",
    "Process",
    "process_alive",
    "run_status",
    "this_process",
]

RUNNING = "running"
LOST = "lost"

_cache: dict[int, Process] = {}


class Process(NamedTuple):
    """Where a pid names one process: ``host``, ``scope`` (boot and pid namespace) and ``pid``."""

    host: str
    scope: str
    pid: int


def _scope() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # not Linux (or no /proc): the host name alone tells the scope
        return sys.platform
    return f"{boot}/{namespace}"


def this_process() -> Process:
    """This process (recomputed after a fork)."""
    pid = os.getpid()
    found = _cache.get(pid)
    if found is None:
        found = _cache[pid] = Process(socket.gethostname(), _scope(), pid)
    return found


def process_alive(pid: int) -> bool:
    """Whether ``pid`` (in this pid scope) is a live process; a zombie counts as gone, and a
    pid that cannot be checked (another user's) as alive."""
    if pid <= 0:
        return True  # not a pid artiflow recorded; never signal a process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


def run_status(
    status: str,
    lease_expires_at: datetime | None,
    host: str | None,
    scope: str | None,
    pid: int | None,
    now: datetime | None = None,
) -> str:
    """The status readers see: a stored ``running`` is ``lost`` when its lease expired, or
    when its process is gone and was in this pid scope; any other status is as stored."""
    if status != RUNNING:
        return status
    if lease_expires_at is not None:
        if lease_expires_at.tzinfo is None:  # SQLite reads timestamps back naive, in UTC
            lease_expires_at = lease_expires_at.replace(tzinfo=UTC)
        if lease_expires_at < (now or datetime.now(UTC)):
            return LOST
    if pid is None or host is None or scope is None:
        return status
    me = this_process()
    if host == me.host and scope == me.scope and not process_alive(pid):
        return LOST
    return status
