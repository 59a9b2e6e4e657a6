"""Mapped artifact tasks: each run of ``task.map(...)`` records its position as its map index.

Prefect gives the runs of a ``.map()`` nothing that tells them apart (no index, and dynamic keys
that are random), so parallel writers would all appear as the same step in artiflow's lineage.
An artifact task is an :class:`ArtifactTask`: its ``map`` adds one more mapped keyword,
:data:`MAP_INDEX` (``0, 1, 2, ...``, one per run), which the wrapper takes off before calling the
function and records as the artiflow run's ``map_index`` (lineage labels ``flow/task[2]``), as
Airflow does for mapped task instances. Being a task parameter, it reaches the run under every
task runner (threads, processes, remote) and shows among the run's parameters in Prefect's UI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sized
from io import IOBase
from typing import Any

from prefect import Task

__all__ = ["MAP_INDEX", "ArtifactTask", "map_length"]

MAP_INDEX = "artiflow_map_index"
"""The keyword ``.map()`` fills with each run's position (``None`` for a run that is not
mapped); part of every artifact task's signature."""

_MAP_OPTIONS = ("return_state", "wait_for", "deferred")


def _materialised(value: Any) -> Any:
    """An iterator (read once) as a list, so it can be measured and still be mapped over
    (a file object stays one value: Prefect does not map over it)."""
    return list(value) if isinstance(value, Iterator) and not isinstance(value, IOBase) else value


def map_length(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """How many runs ``task.map(*args, **kwargs)`` makes, worked out as Prefect's task runners
    do (futures resolved, ``unmapped`` values and strings not mapped over).

    Raises whatever Prefect's own ``map`` would raise for such arguments (no iterable, or
    iterables of different lengths), so the caller can let Prefect report it.
    """
    from prefect.utilities.annotations import BaseAnnotation, unmapped
    from prefect.utilities.callables import explode_variadic_parameter, get_call_parameters
    from prefect.utilities.collections import isiterable
    from prefect.utilities.engine import resolve_inputs_sync

    parameters = get_call_parameters(fn, args, dict(kwargs), apply_defaults=False)
    parameters = explode_variadic_parameter(fn, resolve_inputs_sync(parameters, max_depth=0))
    lengths = set()
    for value in parameters.values():
        if isinstance(value, BaseAnnotation) and not isinstance(value, unmapped):
            value = value.unwrap()
        if not isinstance(value, unmapped) and isiterable(value):
            lengths.add(len(value) if isinstance(value, Sized) else len(list(value)))
    if len(lengths) != 1:
        raise ValueError(f"cannot tell how many runs .map() makes (lengths {sorted(lengths)})")
    return lengths.pop()


class ArtifactTask(Task):  # type: ignore[type-arg]
    """A Prefect ``Task`` whose mapped runs know their position (see the module docstring)."""

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Prefect's ``Task.map``, each run also given its position as :data:`MAP_INDEX`."""
        if MAP_INDEX not in kwargs:
            options = {k: kwargs.pop(k) for k in _MAP_OPTIONS if k in kwargs}
            args = tuple(_materialised(a) for a in args)
            kwargs = {k: _materialised(v) for k, v in kwargs.items()}
            try:
                count = map_length(self.fn, args, kwargs)
            except Exception:  # Prefect's own map raises the error that explains it
                count = None
            if count is not None:
                kwargs[MAP_INDEX] = list(range(count))
            kwargs.update(options)
        return super().map(*args, **kwargs)

    def with_options(self, **options: Any) -> Any:
        """Prefect's ``Task.with_options``; the copy is an :class:`ArtifactTask` too."""
        task = super().with_options(**options)
        task.__class__ = type(self)
        return task
