"""Renderings of a lineage graph: a text tree, Graphviz dot, Mermaid, and OpenLineage RunEvents."""

from __future__ import annotations

import json
import uuid
from typing import Any

from vtool import __version__
from vtool.pipeline.graph import Artifact, Lineage, short

PRODUCER = f"https://github.com/vtool/vtool/tree/v{__version__}"
OL_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
OL_FACETS = "https://openlineage.io/spec/facets/1-0-0/"
UNKNOWN_TIME = "1970-01-01T00:00:00Z"
FORMATS = ("text", "json", "dot", "mermaid", "openlineage")
DOWN_FORMATS = ("text", "json")


def text(lineage: Lineage) -> str:
    """Show the output, then each run that led to it (nearest first), with what it used."""
    lines = [f"{lineage.target} {short(lineage.oid)}" + (f" at {lineage.rev}" if lineage.rev else "")]
    for run in reversed(lineage.runs):
        who = f" by {run.user}@{run.host}" if run.user else ""
        at = f" at commit {run.commit[:12]}" if run.commit else ""
        lines.append(f"└─ {run.stage}: run {run.started or '(no run record)'}{who}{at}")
        lines.append(f"   cmd: {run.cmd}")
        for file, keys in sorted(run.params.items()):
            values = ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in sorted(keys.items()))
            lines.append(f"   params {file}: {values}")
        lines.append("   env: " + ", ".join(f"{c} {v if c in ('python', 'platform', 'image') else short(v)}"
                                            for c, v in sorted(run.env.items())))
        for a in run.used:
            source = f" <- {a.producer}" if a.producer else (" (source)" if a.kind == "data" else "")
            lines.append(f"   {a.kind} {a.path} {a.oid}{source}")
        for a in run.generated:
            lines.append(f"   made {a.path} {a.oid}")
    lines += [f"warning: {p}" for p in lineage.problems]
    return "\n".join(lines)


def _node_id(a: Artifact) -> str:
    return f"{a.path}@{a.oid[7:15]}"


def _edges(lineage: Lineage) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """Return artifact nodes (id -> label) and the used / generated-by edges."""
    nodes: dict[str, str] = {}
    edges = []
    for run in lineage.runs:
        for a in run.used:
            nodes[_node_id(a)] = f"{a.path}\\n{short(a.oid)}"
            edges.append((_node_id(a), f"stage:{run.stage}", "used"))
        for a in run.generated:
            nodes[_node_id(a)] = f"{a.path}\\n{short(a.oid)}"
            edges.append((f"stage:{run.stage}", _node_id(a), "generated"))
    return nodes, edges


def dot(lineage: Lineage) -> str:
    """Render the graph for Graphviz: runs as boxes, artifacts as ellipses."""
    nodes, edges = _edges(lineage)
    lines = ["digraph lineage {", "  rankdir=LR;"]
    lines += [f"  {_quote('stage:' + r.stage)} [shape=box, label={_quote(r.stage)}];" for r in lineage.runs]
    lines += [f"  {_quote(n)} [shape=ellipse, label={_quote(label).replace(chr(92) * 2, chr(92))}];"
              for n, label in sorted(nodes.items())]
    lines += [f"  {_quote(a)} -> {_quote(b)} [label={_quote(kind)}];" for a, b, kind in edges]
    return "\n".join([*lines, "}"])


def _quote(text: str) -> str:
    """Quote a dot identifier (JSON string escaping is dot's too)."""
    return json.dumps(text, ensure_ascii=False)


def mermaid(lineage: Lineage) -> str:
    """Render the graph as a Mermaid flowchart."""
    nodes, edges = _edges(lineage)
    ids = {n: f"a{i}" for i, n in enumerate(sorted(nodes))} | {f"stage:{r.stage}": f"s{i}"
                                                                for i, r in enumerate(lineage.runs)}
    lines = ["flowchart LR"]
    lines += [f'  {ids["stage:" + r.stage]}["{r.stage}"]' for r in lineage.runs]
    lines += [f'  {ids[n]}(["{label.replace(chr(92) + "n", "<br/>")}"])' for n, label in sorted(nodes.items())]
    lines += [f"  {ids[a]} -->|{kind}| {ids[b]}" for a, b, kind in edges]
    return "\n".join(lines)


def openlineage(lineage: Lineage, namespace: str) -> list[dict[str, Any]]:
    """Return one START and one COMPLETE RunEvent per run, parents first."""
    checks = {c["path"]: [] for r in lineage.runs for c in r.checks}
    for run in lineage.runs:
        for c in run.checks:
            checks[c["path"]].append(c)
    events = []
    for run in lineage.runs:
        run_facets = {"runId": str(uuid.UUID(hex=run.key[7:]))}
        job = {"namespace": namespace, "name": run.stage, "facets": {"sourceCodeLocation": {
            **_facet("SourceCodeLocationJobFacet"), "type": "git", "url": namespace, "version": run.commit or ""}}}
        inputs = [_dataset(a, namespace, checks, "inputFacets") for a in run.used]
        outputs = [_dataset(a, namespace, checks, "facets") for a in run.generated]
        for kind, moment in (("START", run.started), ("COMPLETE", run.ended)):
            events.append({"eventType": kind, "eventTime": moment or UNKNOWN_TIME, "producer": PRODUCER,
                           "schemaURL": OL_SCHEMA, "run": run_facets, "job": job, "inputs": inputs,
                           "outputs": outputs})
    return events


def _facet(name: str) -> dict[str, str]:
    return {"_producer": PRODUCER, "_schemaURL": f"{OL_FACETS}{name}.json"}


def _dataset(a: Artifact, namespace: str, checks: dict[str, list[dict[str, Any]]], where: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"namespace": namespace, "name": a.path,
                           "facets": {"version": {**_facet("DatasetVersionDatasetFacet"), "datasetVersion": a.oid}}}
    covered = [c for path, found in checks.items() if path == a.path or path.startswith(a.path + "/") for c in found]
    if covered:
        assertions = [{"assertion": f"{c['check']}: {c['rule']}", "success": c["status"] == "ok"} for c in covered]
        doc.setdefault(where, {})["dataQualityAssertions"] = {**_facet("DataQualityAssertionsDatasetFacet"),
                                                              "assertions": assertions}
    return doc


def render(lineage: Lineage, fmt: str, namespace: str) -> str:
    """Render in one of FORMATS other than json (which the CLI prints from the result itself)."""
    if fmt == "openlineage":
        return "\n".join(json.dumps(e, sort_keys=True) for e in openlineage(lineage, namespace))
    return {"text": text, "dot": dot, "mermaid": mermaid}[fmt](lineage)


def text_down(result: Any) -> str:
    """List each output version that used the dataset, with the commits holding it (newest first)."""
    lines = [f"{result.target}: {len(result.uses)} output version(s) used it, in {result.commits_walked} commit(s) "
             "that changed vtool.lock"]
    for use in result.uses:
        commits = ", ".join(c[:10] for c in use.commits[:5]) + (f" and {len(use.commits) - 5} more"
                                                                  if len(use.commits) > 5 else "")
        lines.append(f"  {use.output} {use.oid} ({use.stage}, via {', '.join(use.via)}): {commits}")
    lines += [f"warning: {p}" for p in result.problems]
    return "\n".join(lines)
