"""Lineage: the bipartite graph run → produced version, version → consuming run.

The closure up- or downstream of a version is one recursive query
(:mod:`artiflow.db.lineage`); this module turns its rows into a graph and renders it (JSON,
Graphviz DOT, Mermaid, a text tree). ``depth`` counts hops (edges) from the starting version:
``depth=1`` upstream is the runs that produced it, ``depth=2`` adds the versions those runs
consumed, and so on.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from .errors import InvalidMetadata
from .liveness import RUNNING, run_status
from .records import run_label

if TYPE_CHECKING:
    from .db import MetaStore

__all__ = [
    "DIRECTIONS",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "lineage",
]

DIRECTIONS: tuple[str, ...] = ("upstream", "downstream", "both")


class LineageNode(NamedTuple):
    """An artifact version (``kind="artifact"``) or a step run (``kind="run"``).

    ``detail`` is the artifact's type, or the run's pipeline run id; ``status`` is the run's
    status as :class:`~artiflow.RunInfo` has it (``lost`` included). The text tree marks runs
    that did not finish; :meth:`LineageGraph.to_dict` leaves both out.
    """

    id: str
    kind: str
    label: str
    detail: str = ""
    status: str = ""


class LineageEdge(NamedTuple):
    """Data flowed from ``source`` to ``target`` (run → its output, input → its run)."""

    source: str
    target: str


_T = TypeVar("_T", LineageNode, LineageEdge)


class _Rows(Sequence[_T]):
    """A read-only list of :class:`LineageNode` or :class:`LineageEdge`, held as plain tuples.

    A large lineage has tens of thousands of nodes and edges. Plain tuples of strings drop out of
    the garbage collector's tracking; as many named tuples kept alive would not, and each later
    full collection would walk them all (tens of milliseconds for a 10,000-version chain). Items
    become named tuples as they are read; equal to plain tuples and lists of either.
    """

    __slots__ = ("_make", "_rows")

    def __init__(self, kind: type[_T], rows: list[tuple[str, ...]]) -> None:
        self._make: Callable[[tuple[str, ...]], _T] = partial(tuple.__new__, kind)
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> list[_T]: ...
    def __getitem__(self, index: int | slice) -> _T | list[_T]:
        if isinstance(index, slice):
            return list(map(self._make, self._rows[index]))
        return self._make(self._rows[index])

    def __iter__(self) -> Iterator[_T]:
        return map(self._make, self._rows)

    def __contains__(self, value: object) -> bool:
        return value in self._rows

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Rows):
            return self._rows == other._rows
        return self._rows == other if isinstance(other, list) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


class LineageGraph:
    """The runs and versions of a lineage query.

    ``nodes`` (:class:`LineageNode`) lists the root first, then versions and runs, each by
    label; ``edges`` (:class:`LineageEdge`) are sorted. Both are read-only sequences. Node ids
    are ``artifact:<version id>`` and ``run:<run id>``.
    """

    def __init__(
        self,
        root: LineageNode,
        direction: str,
        nodes: Iterable[tuple[str, str, str, str, str]] = (),
        edges: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.root = root.id
        self.direction = direction
        self._nodes: list[tuple[str, ...]] = [root, *nodes]  # nodes: all but the root
        self._edges: list[tuple[str, ...]] = list(edges)
        self.nodes: Sequence[LineageNode] = _Rows(LineageNode, self._nodes)
        self.edges: Sequence[LineageEdge] = _Rows(LineageEdge, self._edges)

    def __repr__(self) -> str:
        return (
            f"<LineageGraph {self._nodes[0][2]} {self.direction}: "
            f"{len(self._nodes)} nodes, {len(self._edges)} edges>"
        )

    @cached_property
    def _by_id(self) -> dict[str, tuple[str, ...]]:
        return {n[0]: n for n in self._nodes}

    def node(self, node_id: str) -> LineageNode:
        return LineageNode._make(self._by_id[node_id])

    @cached_property
    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        parents: dict[str, list[str]] = {}
        children: dict[str, list[str]] = {}
        for source, target in self._edges:
            parents.setdefault(target, []).append(source)
            children.setdefault(source, []).append(target)
        return parents, children

    def parents(self, node_id: str) -> list[str]:
        """The nodes with an edge into ``node_id`` (what it came from)."""
        return list(self._adjacency[0].get(node_id, []))

    def children(self, node_id: str) -> list[str]:
        """The nodes ``node_id`` has an edge to (what came from it)."""
        return list(self._adjacency[1].get(node_id, []))

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {
            "nodes": [{"id": i, "kind": k, "label": label} for i, k, label, *_ in self._nodes],
            "edges": [{"source": s, "target": t} for s, t in self._edges],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_dot(self) -> str:
        """Graphviz DOT: versions as boxes, runs (with their pipeline run) as ellipses."""

        def quote(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for n in self.nodes:
            shape = "box" if n.kind == "artifact" else "ellipse"
            style = ", style=bold" if n.id == self.root else ""
            lines.append(f"  {quote(n.id)} [label={quote(_shown(n))}, shape={shape}{style}];")
        lines += [f"  {quote(e.source)} -> {quote(e.target)};" for e in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_tree(self, max_levels: int = 60) -> str:
        """An indented text tree from the root, upstream (what it came from) and/or downstream
        (what used it). A node met again is marked ``(shown above)``; branches deeper than
        ``max_levels`` are cut (a long chain reads better as JSON, DOT or Mermaid)."""
        lines = [self._tree_label(self.root)]
        ways = {"upstream": [True], "downstream": [False]}.get(self.direction, [True, False])
        for up in ways:
            if len(ways) == 1:
                self._grow(lines, up, "", max_levels)
            else:
                lines.append(("├── " if up else "└── ") + ("upstream" if up else "downstream"))
                self._grow(lines, up, "│   " if up else "    ", max_levels)
        return "\n".join(lines) + "\n"

    def _tree_label(self, node_id: str) -> str:
        node = self.node(node_id)
        if node.kind == "artifact":
            return f"{node.label}  {node.detail}"
        status = f" ({node.status})" if node.status not in ("finished", "") else ""
        return f"run {node.label}  {node.detail or node.id[4:12]}{status}"

    def _grow(self, lines: list[str], up: bool, prefix: str, max_levels: int) -> None:
        def order(node_id: str) -> tuple[str, str, str]:
            node = self.node(node_id)
            return node.label, node.detail, node_id

        def push(node_id: str, indent: str, level: int) -> None:
            kids = sorted(self.parents(node_id) if up else self.children(node_id), key=order)
            stack.extend((k, indent, k == kids[-1], level) for k in reversed(kids))

        seen = {self.root}
        stack: list[tuple[str, str, bool, int]] = []
        push(self.root, prefix, 1)
        while stack:  # depth first, without recursion: a lineage can be thousands deep
            node_id, indent, last, level = stack.pop()
            branch, below = ("└── ", "    ") if last else ("├── ", "│   ")
            if level > max_levels:
                lines.append(f"{indent}{branch}... (deeper levels not shown)")
                continue
            again = node_id in seen
            lines.append(
                indent + branch + self._tree_label(node_id) + (" (shown above)" if again else "")
            )
            if not again:
                seen.add(node_id)
                push(node_id, indent + below, level + 1)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart: versions as rectangles, runs as stadiums."""
        ids = {n.id: f"n{i}" for i, n in enumerate(self.nodes)}

        def label(text: str) -> str:
            return '"' + text.replace('"', "#quot;") + '"'

        lines = ["flowchart LR"]
        for n in self.nodes:
            shape = f"[{label(n.label)}]" if n.kind == "artifact" else f"([{label(_shown(n))}])"
            lines.append(f"  {ids[n.id]}{shape}")
        lines += [f"  {ids[e.source]} --> {ids[e.target]}" for e in self.edges]
        return "\n".join(lines) + "\n"


def _shown(node: LineageNode) -> str:
    """A node's label in DOT and Mermaid: runs also show their pipeline run, if known."""
    return f"{node.label} ({node.detail})" if node.kind == "run" and node.detail else node.label


def _check_args(direction: str, depth: int | None) -> None:
    if direction not in DIRECTIONS:
        raise InvalidMetadata(
            f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
        )
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise InvalidMetadata(f"depth must be a non-negative integer or None, got {depth!r}")


def _collect(
    rows: Iterable[Sequence[Any]],
    upstream: bool,
    nodes: dict[str, tuple[str, str, str, str, str]],
    edges: dict[tuple[str, str], None],
) -> None:
    """Turn :func:`_closure` rows into nodes and edges (plain tuples, see :class:`_Rows`), in
    one pass: the hot loop of a large lineage (a 10,000-version chain is 10,000 rows).

    ``edges`` is a dict, not a set, so that it keeps the walk's order, which is nearly sorted
    already and so sorts faster. ``rows`` may be a streamed result: rows read one at a time die
    young, rather than swelling the garbage collector's oldest generation.
    """
    for (
        version_id,
        run_id,
        reached_from,
        name,
        type_,
        index,
        pipeline,
        step,
        map_index,
        attempt,
        status,
        pipeline_run,
        lease_expires_at,
        host,
        pid_scope,
        pid,
    ) in rows:
        run = "run:" + run_id
        if run not in nodes:
            label = run_label(run_id, pipeline, step, map_index, attempt)
            if status == RUNNING:
                status = run_status(status, lease_expires_at, host, pid_scope, pid)
            nodes[run] = (run, "run", label, pipeline_run or "", status)
        if reached_from is not None:
            reached = f"artifact:{reached_from}"
            edges[(run, reached) if upstream else (reached, run)] = None
        if version_id is not None:
            version = f"artifact:{version_id}"
            if version not in nodes:
                nodes[version] = (version, "artifact", f"{name}:v{index}", type_, "")
            edges[(version, run) if upstream else (run, version)] = None


#: The order of nodes after the root: versions before runs, then by label, detail and id.
_NODE_ORDER = operator.itemgetter(1, 2, 3, 0)


def lineage(
    meta: MetaStore,
    ref: str,
    direction: str = "upstream",
    depth: int | None = None,
) -> LineageGraph:
    """The runs and versions up- and/or downstream of ``ref`` within ``depth`` hops.

    Edges point the way data flowed: run → the version it produced, version → the run that
    consumed it. Artifact labels are qualified names (``cats:v0``), run labels
    :attr:`RunInfo.label`. ``both`` is the union of the upstream and downstream graphs.
    """
    _check_args(direction, depth)
    record = meta.find(ref)
    root = LineageNode(f"artifact:{record.id}", "artifact", record.qualified_name, record.type)
    nodes: dict[str, tuple[str, str, str, str, str]] = {root.id: root}
    edges: dict[tuple[str, str], None] = {}
    if depth != 0:
        ways = ("upstream", "downstream") if direction == "both" else (direction,)
        for way, rows in meta.closure_rows(record.id, ways, depth):
            _collect(rows, way == "upstream", nodes, edges)
    del nodes[root.id]
    return LineageGraph(root, direction, sorted(nodes.values(), key=_NODE_ORDER), sorted(edges))
