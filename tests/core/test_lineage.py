"""Lineage: graph shape up/down/both and by depth, DOT/Mermaid/JSON, and the SQL it takes.

Runs on SQLite and PostgreSQL (the ``registry`` fixture; PostgreSQL needs
``ARTIFLOW_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event

import artiflow as af
from artiflow.errors import ArtifactNotFound, ArtiflowError, InvalidMetadata
from artiflow.lineage import LineageEdge, LineageGraph, LineageNode


def produce(
    reg: af.Registry,
    name: str,
    content: str,
    uses: Sequence[str] = (),
    type_: str = "dataset",
    **identity: Any,
) -> tuple[str, str]:
    """One run that uses ``uses`` and logs ``name``; returns (qualified name, run id)."""
    with reg.run(**identity) as run:
        for ref in uses:
            run.use_artifact(ref)
        art = af.Artifact(name, type_)
        with art.new_file("data.txt") as fh:
            fh.write(content)
        run.log_artifact(art)
        art.wait()
        return str(art.qualified_name), run.id


@dataclass
class Pipeline:
    """extract → raw:v0 → clean → clean:v0 → train (also uses raw:v0) → model:v0 → evaluate →
    report:v0"""

    reg: af.Registry
    ids: dict[str, str]  # node label → node id

    def node(self, label: str) -> str:
        return self.ids[label]


@pytest.fixture
def pipeline(registry: af.Registry) -> Pipeline:
    _, extract = produce(registry, "raw", "raw", pipeline="etl", step="extract")
    _, clean = produce(registry, "clean", "clean", ["raw:v0"], pipeline="etl", step="clean")
    _, train = produce(
        registry,
        "model",
        "weights",
        ["clean:v0", "raw:latest"],
        "model",
        pipeline="etl",
        step="train",
    )
    _, evaluate = produce(
        registry, "report", "0.9", ["model:v0"], "report", pipeline="etl", step="evaluate"
    )
    ids = {
        f"run {k}": f"run:{v}"
        for k, v in {
            "extract": extract,
            "clean": clean,
            "train": train,
            "evaluate": evaluate,
        }.items()
    }
    for name in ("raw", "clean", "model", "report"):
        ids[f"{name}:v0"] = f"artifact:{registry.artifact(name)._record.id}"  # type: ignore[union-attr]
    return Pipeline(registry, ids)


def shape(graph: LineageGraph, p: Pipeline) -> tuple[set[str], set[tuple[str, str]]]:
    """Nodes and edges by readable names."""
    name = {v: k for k, v in p.ids.items()}
    nodes = {name[n["id"]] for n in graph.to_dict()["nodes"]}
    edges = {(name[e["source"]], name[e["target"]]) for e in graph.to_dict()["edges"]}
    return nodes, edges


UP_EDGES = {
    ("run extract", "raw:v0"),
    ("raw:v0", "run clean"),
    ("run clean", "clean:v0"),
    ("clean:v0", "run train"),
    ("raw:v0", "run train"),
    ("run train", "model:v0"),
}


def test_upstream_is_everything_the_version_came_from(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("model:v0", direction="upstream")
    nodes, edges = shape(graph, pipeline)
    assert nodes == {"model:v0", "run train", "clean:v0", "raw:v0", "run clean", "run extract"}
    assert edges == UP_EDGES
    assert graph.to_dict()["nodes"][0] == {
        "id": pipeline.node("model:v0"),
        "kind": "artifact",
        "label": "model:v0",
    }


def test_downstream_is_everything_that_used_the_version(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("raw:v0", direction="downstream")
    nodes, edges = shape(graph, pipeline)
    assert nodes == {
        "raw:v0",
        "run clean",
        "clean:v0",
        "run train",
        "model:v0",
        "run evaluate",
        "report:v0",
    }
    assert edges == {
        ("raw:v0", "run clean"),
        ("run clean", "clean:v0"),
        ("clean:v0", "run train"),
        ("raw:v0", "run train"),
        ("run train", "model:v0"),
        ("model:v0", "run evaluate"),
        ("run evaluate", "report:v0"),
    }


def test_both_is_the_union_of_up_and_downstream(pipeline: Pipeline) -> None:
    reg = pipeline.reg
    both = shape(reg.lineage("clean:v0", direction="both"), pipeline)
    up = shape(reg.lineage("clean:v0", direction="upstream"), pipeline)
    down = shape(reg.lineage("clean:v0", direction="downstream"), pipeline)
    assert both == (up[0] | down[0], up[1] | down[1])
    assert both[0] == {
        "clean:v0",
        "run clean",
        "raw:v0",
        "run extract",
        "run train",
        "model:v0",
        "run evaluate",
        "report:v0",
    }
    # raw:v0 → train is an edge of neither walk from clean:v0 (train is downstream, raw upstream)
    assert ("raw:v0", "run train") not in both[1]


@pytest.mark.parametrize(
    ("depth", "nodes"),
    [
        (0, {"model:v0"}),
        (1, {"model:v0", "run train"}),
        (2, {"model:v0", "run train", "clean:v0", "raw:v0"}),
        (3, {"model:v0", "run train", "clean:v0", "raw:v0", "run clean", "run extract"}),
        (9, {"model:v0", "run train", "clean:v0", "raw:v0", "run clean", "run extract"}),
    ],
)
def test_depth_counts_hops(pipeline: Pipeline, depth: int, nodes: set[str]) -> None:
    graph = pipeline.reg.lineage("model:v0", direction="upstream", depth=depth)
    got_nodes, got_edges = shape(graph, pipeline)
    assert got_nodes == nodes
    assert got_edges == {e for e in UP_EDGES if set(e) <= nodes}


def test_depth_downstream_and_both(pipeline: Pipeline) -> None:
    reg = pipeline.reg
    assert shape(reg.lineage("clean:v0", "downstream", depth=1), pipeline)[0] == {
        "clean:v0",
        "run train",
    }
    assert shape(reg.lineage("clean:v0", "both", depth=2), pipeline)[0] == {
        "clean:v0",
        "run clean",
        "raw:v0",
        "run train",
        "model:v0",
    }


def test_labels_and_kinds(registry: af.Registry) -> None:
    produce(registry, "cats", "a", pipeline="dag", step="task", map_index=3, attempt=2)
    produce(registry, "dogs", "b", ["cats:v0"])
    graph = registry.lineage("dogs:v0")
    labels = {n["label"]: n["kind"] for n in graph.to_dict()["nodes"]}
    run_id = registry.artifact("dogs:v0").logged_by().id  # type: ignore[union-attr]
    assert labels == {
        "dogs:v0": "artifact",
        "cats:v0": "artifact",
        "dag/task[3]#2": "run",
        f"run {run_id[:8]}": "run",
    }
    assert set(graph.to_dict()) == {"nodes", "edges"}
    for node in graph.to_dict()["nodes"]:
        assert set(node) == {"id", "kind", "label"}
        assert re.fullmatch(r"artifact:\d+|run:[0-9a-f]{32}", node["id"])
    for edge in graph.to_dict()["edges"]:
        assert set(edge) == {"source", "target"}


def test_a_run_that_relogs_what_it_used_ends_the_walk(registry: af.Registry) -> None:
    produce(registry, "cats", "same", pipeline="p", step="first")
    _, again = produce(registry, "cats", "same", ["cats:v0"], pipeline="p", step="again")
    assert [a.version for a in registry.versions("cats")] == ["v0"]  # deduplicated
    for direction in ("upstream", "downstream", "both"):
        graph = registry.lineage("cats:v0", direction=direction)
        edges = {(e.source, e.target) for e in graph.edges}
        assert (f"run:{again}", graph.root) in edges or (graph.root, f"run:{again}") in edges
        assert len(graph.nodes) <= 3


def test_a_version_without_lineage_is_a_single_node(registry: af.Registry) -> None:
    produce(registry, "alone", "x")
    graph = registry.lineage("alone:v0", direction="downstream")
    assert graph.to_dict() == {
        "nodes": [{"id": graph.root, "kind": "artifact", "label": "alone:v0"}],
        "edges": [],
    }


def test_logged_by_and_used_by(pipeline: Pipeline) -> None:
    reg = pipeline.reg
    producer = reg.artifact("model:v0").logged_by()
    assert producer is not None
    assert (producer.pipeline, producer.step, producer.status) == ("etl", "train", "finished")
    assert f"run:{producer.id}" == pipeline.node("run train")
    users = reg.artifact("raw:latest").used_by()
    assert [f"run:{r.id}" for r in users] == [
        pipeline.node("run clean"),
        pipeline.node("run train"),
    ]
    assert reg.artifact("report:v0").used_by() == []


def test_failed_run_keeps_its_lineage(registry: af.Registry) -> None:
    produce(registry, "cats", "a")
    with pytest.raises(RuntimeError), registry.run(pipeline="p", step="boom") as run:
        run.use_artifact("cats:v0")
        raise RuntimeError("boom")
    graph = registry.lineage("cats:v0", direction="downstream")
    (run_node,) = [n for n in graph.nodes if n.kind == "run"]
    assert (run_node.label, run_node.status) == ("p/boom", "failed")


def test_bad_arguments(pipeline: Pipeline) -> None:
    reg = pipeline.reg
    with pytest.raises(InvalidMetadata, match="direction"):
        reg.lineage("model:v0", direction="sideways")
    for depth in (-1, 1.5, True):
        with pytest.raises(InvalidMetadata, match="depth"):
            reg.lineage("model:v0", depth=depth)  # type: ignore[arg-type]
    with pytest.raises(ArtifactNotFound):
        reg.lineage("model:v7")
    with pytest.raises(ArtiflowError):
        reg.lineage("no such name")


# ------------------------------------------------------------------------------ exports
def test_json_round_trips(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("clean:v0", direction="both")
    assert json.loads(graph.to_json()) == graph.to_dict()
    data = graph.to_dict()
    ids = [n["id"] for n in data["nodes"]]
    assert len(ids) == len(set(ids))
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])
    assert data["edges"] == sorted(data["edges"], key=lambda e: (e["source"], e["target"]))


def test_dot(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("model:v0")
    dot = graph.to_dot()
    lines = dot.splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}"
    model, train = pipeline.node("model:v0"), pipeline.node("run train")
    assert f'  "{model}" [label="model:v0", shape=box, style=bold];' in lines
    assert f'  "{train}" [label="etl/train", shape=ellipse];' in lines
    assert f'  "{train}" -> "{model}";' in lines
    assert sum("->" in line for line in lines) == len(graph.edges)
    assert sum("[label=" in line for line in lines) == len(graph.nodes)


def test_dot_and_mermaid_escape_labels(registry: af.Registry) -> None:
    produce(registry, "cats", "x", pipeline='my "dag"', step="a\\b")
    graph = registry.lineage("cats:v0")
    assert 'label="my \\"dag\\"/a\\\\b"' in graph.to_dot()
    assert '(["my #quot;dag#quot;/a\\b"])' in graph.to_mermaid()


def test_mermaid(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("model:v0")
    text = graph.to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    short = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    assert f'  {short[pipeline.node("model:v0")]}["model:v0"]' in lines
    assert f'  {short[pipeline.node("run train")]}(["etl/train"])' in lines
    arrows = [line for line in lines if "-->" in line]
    assert len(arrows) == len(graph.edges)
    assert f"  {short[pipeline.node('run train')]} --> {short[pipeline.node('model:v0')]}" in arrows
    for line in lines[1:]:  # every line is a node or an edge with mermaid-safe ids
        assert re.fullmatch(r'  n\d+(\["[^"]*"\]|\(\["[^"]*"\]\)| --> n\d+)', line)


def test_graph_helpers(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("clean:v0", direction="both")
    clean = pipeline.node("clean:v0")
    assert graph.parents(clean) == [pipeline.node("run clean")]
    assert graph.children(clean) == [pipeline.node("run train")]
    assert graph.node(clean).label == "clean:v0"
    assert graph.node(clean).detail == "dataset"
    assert "clean:v0 both" in repr(graph)


def test_nodes_and_edges_are_sequences_of_named_tuples(pipeline: Pipeline) -> None:
    graph = pipeline.reg.lineage("clean:v0", direction="both")
    nodes, edges = list(graph.nodes), list(graph.edges)
    assert all(type(n) is LineageNode for n in nodes) and all(type(e) is LineageEdge for e in edges)
    assert nodes[0] == graph.nodes[0] == graph.node(graph.root) and nodes[0].id == graph.root
    kinds = [n.kind for n in nodes[1:]]  # after the root: versions, then runs, each by label
    assert kinds == sorted(kinds) and {"artifact", "run"} == set(kinds)
    for kind in ("artifact", "run"):
        labels = [n.label for n in nodes[1:] if n.kind == kind]
        assert labels == sorted(labels)
    assert edges == sorted(edges) and len(graph.edges) == len(edges)
    assert graph.nodes[1:] == nodes[1:] and graph.edges[-1] == edges[-1]
    assert graph.edges == edges == [tuple(e) for e in edges]  # equal to lists of plain tuples
    assert edges[0] in graph.edges and tuple(edges[0]) in graph.edges
    assert ("run:nope", graph.root) not in graph.edges
    assert repr(graph.edges) == repr(edges)


# ------------------------------------------------------------------------------ how it is computed
@pytest.fixture
def statements(registry: af.Registry) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(registry.meta.engine, "before_cursor_execute", record)
    yield seen
    event.remove(registry.meta.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("direction", ["upstream", "downstream", "both"])
@pytest.mark.parametrize("depth", [None, 3])
def test_one_recursive_query_per_direction(
    registry: af.Registry, statements: list[str], direction: str, depth: int | None
) -> None:
    """The closure comes from recursive SQL, however long the chain: the lookup of the
    reference plus one ``WITH RECURSIVE`` statement per direction."""
    produce(registry, "chain", "0")
    for i in range(1, 25):
        produce(registry, "chain", str(i), [f"chain:v{i - 1}"], pipeline="c", step=str(i))
    statements.clear()
    graph = registry.lineage("chain:v12", direction=direction, depth=depth)
    recursive = [s for s in statements if "WITH RECURSIVE" in s.upper()]
    assert len(recursive) == (2 if direction == "both" else 1)
    assert len(statements) <= len(recursive) + 3  # resolving the reference
    up = 13 if depth is None else 2  # v0..v12, or v12 and v11 within three hops
    down = 13 if depth is None else 2  # v12..v24, or v12 and v13
    expected = {"upstream": up, "downstream": down, "both": up + down - 1}[direction]
    assert sum(n.kind == "artifact" for n in graph.nodes) == expected


# ------------------------------------------------------------------------------ text tree
def test_tree(registry: af.Registry) -> None:
    ids = {"pipeline": "etl", "pipeline_run": "r1"}
    produce(registry, "raw", "raw", step="extract", **ids)
    produce(registry, "clean", "clean", ["raw:v0"], step="clean", **ids)
    produce(registry, "model", "w", ["clean:v0", "raw:v0"], "model", step="train", **ids)
    with pytest.raises(RuntimeError), registry.run(step="boom", **ids) as run:
        run.use_artifact("model:v0")
        raise RuntimeError
    assert registry.lineage("model:v0", "upstream").to_tree() == (
        "model:v0  model\n"
        "└── run etl/train  r1\n"
        "    ├── clean:v0  dataset\n"
        "    │   └── run etl/clean  r1\n"
        "    │       └── raw:v0  dataset\n"
        "    │           └── run etl/extract  r1\n"
        "    └── raw:v0  dataset (shown above)\n"
    )
    assert registry.lineage("clean:v0", "both").to_tree() == (
        "clean:v0  dataset\n"
        "├── upstream\n"
        "│   └── run etl/clean  r1\n"
        "│       └── raw:v0  dataset\n"
        "│           └── run etl/extract  r1\n"
        "└── downstream\n"
        "    └── run etl/train  r1\n"
        "        └── model:v0  model\n"
        "            └── run etl/boom  r1 (failed)\n"
    )
    assert registry.lineage("model:v0", "upstream").to_tree(max_levels=2) == (
        "model:v0  model\n"
        "└── run etl/train  r1\n"
        "    ├── clean:v0  dataset\n"
        "    │   └── ... (deeper levels not shown)\n"
        "    └── raw:v0  dataset\n"
        "        └── ... (deeper levels not shown)\n"
    )


def test_tree_of_a_long_chain_is_cut(registry: af.Registry) -> None:
    produce(registry, "chain", "0")
    for i in range(1, 150):
        produce(registry, "chain", str(i), [f"chain:v{i - 1}"])
    lines = registry.lineage("chain:v149").to_tree().splitlines()
    assert len(lines) == 1 + 60 + 1 and lines[-1].endswith("... (deeper levels not shown)")
