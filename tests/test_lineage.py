"""lineage up (Anc of an output, in every format) and down (which outputs used a dataset) across five commits."""

from __future__ import annotations

import json

import pytest
from pipelinekit import lock, log, pipe, repro, set_param
from projectkit import Workdir

__all__ = ["log", "pipe"]


def _history(pipe: Workdir) -> dict[str, dict[str, object]]:
    """Five commits: run, new lr, new raw data, new scale, new raw data; return each commit's lock and sha."""
    steps = {}

    def commit(name: str) -> None:
        repro(pipe)
        steps[name] = {"sha": pipe.commit(name), "lock": lock(pipe)["stages"]}

    commit("c1")
    set_param(pipe, "train", "lr", 0.2)
    commit("c2")
    pipe.write("data/raw/part2.csv", "id\n4\n5\n6\n")
    pipe.add("data/raw")
    commit("c3")
    set_param(pipe, "featurize", "scale", 20)
    commit("c4")
    pipe.write("data/raw/part3.csv", "id\n7\n")
    pipe.add("data/raw")
    commit("c5")
    return steps


def test_lineage_up_names_every_run_version_param_environment_and_commit(pipe: Workdir) -> None:
    repro(pipe)
    head = pipe.commit("ran")
    graph = pipe.ok("lineage", "models/model.bin", "--json").json()
    entries = lock(pipe)["stages"]
    assert graph["target"] == "models/model.bin" and graph["oid"] == entries["train"]["outs"]["models/model.bin"]
    assert [r["stage"] for r in graph["runs"]] == ["prepare", "featurize", "train"]
    assert graph["problems"] == []
    train = graph["runs"][2]
    assert {a["path"]: (a["oid"], a["kind"], a["producer"]) for a in train["used"]} == {
        "data/features": (entries["train"]["deps"]["data/features"], "data", "featurize"),
        "src/train.py": (entries["train"]["deps"]["src/train.py"], "code", None),
    }
    assert {a["path"] for a in train["generated"]} == {"models/model.bin", "metrics.json"}
    assert train["params"] == {"params.yaml": {"train.lr": 0.1, "train.noise": False}}
    assert train["env"] == entries["train"]["env"] and train["environment"]["packages"]
    assert train["commit"] == pipe.git("rev-parse", "HEAD~1").strip() and train["user"]
    prepare = graph["runs"][0]
    assert prepare["used"][0]["path"] == "data/raw" and prepare["used"][0]["producer"] is None

    text = pipe.ok("lineage", "models/model.bin").out
    assert text.startswith("models/model.bin ") and "└─ train: run " in text and "└─ prepare: run " in text
    assert f"data data/raw {entries['prepare']['deps']['data/raw']} (source)" in text
    assert f"code src/train.py {entries['train']['deps']['src/train.py']}" in text
    dot = pipe.ok("lineage", "models/model.bin", "--format", "dot").out
    model = entries["train"]["outs"]["models/model.bin"]
    assert dot.startswith("digraph lineage {") and f'"stage:train" -> "models/model.bin@{model[7:15]}"' in dot
    mermaid = pipe.ok("lineage", "models/model.bin", "--format", "mermaid").out
    assert mermaid.startswith("flowchart LR") and "-->|generated|" in mermaid and '["train"]' in mermaid
    assert head


def test_openlineage_events_carry_versions_commit_and_check_results(pipe: Workdir) -> None:
    text = pipe.read("vtool.yaml") + b"checks:\n  data/prepared/train.csv:\n    rows: {min: 1}\n"
    pipe.write("vtool.yaml", text)
    repro(pipe)
    events = [json.loads(line) for line in pipe.ok("lineage", "models/model.bin", "--format",
                                                     "openlineage").out.splitlines()]
    assert [(e["eventType"], e["job"]["name"]) for e in events] == [
        ("START", "prepare"), ("COMPLETE", "prepare"), ("START", "featurize"), ("COMPLETE", "featurize"),
        ("START", "train"), ("COMPLETE", "train")]
    entries = lock(pipe)["stages"]
    start, complete = events[4], events[5]
    assert start["run"]["runId"] == complete["run"]["runId"] and start["eventTime"] <= complete["eventTime"]
    assert start["job"]["namespace"] == pipe.root.name
    assert start["job"]["facets"]["sourceCodeLocation"]["version"] == pipe.git("rev-parse", "HEAD").strip()
    versions = {d["name"]: d["facets"]["version"]["datasetVersion"] for d in start["outputs"]}
    assert versions == {"models/model.bin": entries["train"]["outs"]["models/model.bin"],
                        "metrics.json": entries["train"]["metrics"]["metrics.json"]}
    prepared = events[1]["outputs"][0]
    assert prepared["name"] == "data/prepared"
    assertions = prepared["facets"]["dataQualityAssertions"]["assertions"]
    assert assertions == [{"assertion": "data/prepared/train.csv: rows", "success": True}]
    used = next(d for d in events[2]["inputs"] if d["name"] == "data/prepared")
    assert used["inputFacets"]["dataQualityAssertions"]["assertions"] == assertions


def test_lineage_at_each_of_five_commits(pipe: Workdir) -> None:
    steps = _history(pipe)
    for name, step in steps.items():
        graph = pipe.ok("lineage", "models/model.bin", "--rev", step["sha"], "--json").json()
        recorded = step["lock"]
        assert graph["oid"] == recorded["train"]["outs"]["models/model.bin"], name
        assert {r["stage"]: r["used"][0]["oid"] for r in graph["runs"]} == {
            s: sorted(recorded[s]["deps"].items())[0][1] for s in ("prepare", "featurize", "train")}, name
        assert graph["problems"] == [], name


def test_lineage_down_by_oid_and_by_path_across_five_commits(pipe: Workdir) -> None:
    steps = _history(pipe)
    sha = {name: s["sha"] for name, s in steps.items()}
    raw_v1 = steps["c1"]["lock"]["prepare"]["deps"]["data/raw"]
    down = pipe.ok("lineage", "--down", raw_v1, "--json").json()
    assert down["oid"] == raw_v1 and down["cached"] is False and down["commits_walked"] == 5
    found = {(u["stage"], u["oid"]): u["commits"] for u in down["uses"]}

    def out(step: str, stage: str, path: str) -> str:
        entry = steps[step]["lock"][stage]
        return {**entry["outs"], **entry["metrics"]}[path]
    assert found == {
        ("prepare", out("c1", "prepare", "data/prepared")): [sha["c2"], sha["c1"]],
        ("featurize", out("c1", "featurize", "data/features")): [sha["c2"], sha["c1"]],
        ("train", out("c1", "train", "models/model.bin")): [sha["c1"]],
        ("train", out("c1", "train", "metrics.json")): [sha["c1"]],
        ("train", out("c2", "train", "models/model.bin")): [sha["c2"]],
        ("train", out("c2", "train", "metrics.json")): [sha["c2"]],
    }
    by_features = pipe.ok("lineage", "--down", out("c1", "featurize", "data/features"), "--json").json()
    assert {u["oid"] for u in by_features["uses"] if u["output"] == "models/model.bin"} == {
        out("c1", "train", "models/model.bin"), out("c2", "train", "models/model.bin")}
    by_path = pipe.ok("lineage", "--down", "data/raw", "--json").json()
    assert by_path["cached"] is True
    models = {u["oid"] for u in by_path["uses"] if u["output"] == "models/model.bin"}
    assert models == {out(c, "train", "models/model.bin") for c in sha}  # five model versions, one per commit
    assert len({u["oid"] for u in by_path["uses"] if u["output"] == "data/prepared"}) == 3
    text = pipe.ok("lineage", "--down", raw_v1).out
    assert text.startswith(f"{raw_v1}: 6 output version(s) used it, in 5 commit(s)")
    pipe.commit("one more")
    assert pipe.ok("lineage", "--down", raw_v1, "--json").json()["cached"] is False


def test_lineage_reports_a_lock_that_no_longer_matches_its_output(pipe: Workdir) -> None:
    repro(pipe)
    pipe.write("data/prepared/extra.csv", "x\n")
    pipe.add("data/prepared")
    graph = pipe.ok("lineage", "models/model.bin", "--json").json()
    assert any(p.startswith("data/prepared: the pointer names ") and "but vtool.lock recorded" in p
               for p in graph["problems"])
    assert "warning: data/prepared: the pointer names" in pipe.ok("lineage", "models/model.bin").out


@pytest.mark.parametrize(("args", "message"), [
    (("lineage", "data/raw"), "data/raw: not an output of any stage"),
    (("lineage", "models/model.bin", "--format", "png"), "'png' is not one of text, json, dot, mermaid"),
    (("lineage", "--down", "data/raw", "--format", "dot"), "'dot' is not one of text, json"),
])
def test_lineage_usage_errors(pipe: Workdir, args: tuple[str, ...], message: str) -> None:
    assert message in pipe.fails(*args, code=2).err


def test_lineage_of_a_stage_that_never_ran(pipe: Workdir) -> None:
    assert "stage train has not run (no entry in vtool.lock)" in pipe.fails("lineage", "models/model.bin",
                                                                            code=2).err
