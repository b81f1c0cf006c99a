"""repro over a real prepare -> featurize -> train pipeline: order, staleness, run cache, failures, lock bytes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from pipelinekit import STAGES, actions, lock, log, pipe, ran, reasons, repro, set_param
from projectkit import Workdir, git_in

from vtool.pipeline import lockfile
from vtool.pipeline.env import OVERRIDE_ENV, fingerprint

__all__ = ["log", "pipe"]


def test_first_repro_runs_every_stage_in_order_and_records_it(pipe: Workdir, log: Path) -> None:
    result = repro(pipe)
    assert actions(result) == dict.fromkeys(STAGES, "ran")
    assert ran(log) == list(STAGES)
    entries = lock(pipe)["stages"]
    assert sorted(entries) == sorted(STAGES)
    assert entries["prepare"]["outs"] == {"data/prepared": pipe.pointer("data/prepared").oid}
    assert entries["train"]["outs"] == {"models/model.bin": pipe.pointer("models/model.bin").oid}
    assert entries["featurize"]["deps"]["data/prepared"] == pipe.pointer("data/prepared").oid
    assert entries["train"]["params"] == {"params.yaml": {"train.lr": 0.1, "train.noise": False}}
    assert entries["train"]["metrics"]["metrics.json"].startswith("xxh128:")
    assert pipe.read("data/features/features.csv") == b"1,60\n2,60\n3,60\n4,60\n5,60\n"
    assert pipe.status()["models/model.bin"]["state"] == "in sync"
    for stage in STAGES:  # one record per run, tracked (not ignored by .vtool/.gitignore)
        records = list(pipe.path(f".vtool/runs/{stage}").glob("*.json"))
        assert len(records) == 1
        doc = json.loads(records[0].read_bytes())
        assert doc["stage"] == stage and doc["exit_code"] == 0 and doc["host"] == socket.gethostname()
        assert subprocess_ignored(pipe, records[0]) is False
    again = repro(pipe)
    assert actions(again) == dict.fromkeys(STAGES, "up to date") and ran(log) == []


def subprocess_ignored(project: Workdir, path: Path) -> bool:


    rel = path.relative_to(project.root).as_posix()
    return subprocess.run(["git", "check-ignore", "-q", rel], cwd=project.root, check=False).returncode == 0


def test_run_record_holds_commit_environment_inputs_and_outputs(pipe: Workdir) -> None:
    head = pipe.git("rev-parse", "HEAD").strip()
    repro(pipe, "--image", "sha256:abc")
    path = next(pipe.path(".vtool/runs/train").glob("*.json"))
    doc = json.loads(path.read_bytes())
    assert doc["commit"] == head and doc["cmd"] == "python src/train.py"
    assert doc["deps"]["src/train.py"] == {"kind": "code", "oid": lock(pipe)["stages"]["train"]["deps"]["src/train.py"]}
    assert doc["deps"]["data/features"]["kind"] == "data"
    assert doc["outs"]["models/model.bin"]["oid"] == pipe.pointer("models/model.bin").oid
    assert doc["outs"]["models/model.bin"]["size"] == pipe.path("models/model.bin").stat().st_size
    env = fingerprint(pipe.root)
    assert doc["env"]["python"] == env.python and doc["env"]["packages"] == list(env.packages)
    assert doc["env"]["image"] == "sha256:abc"
    assert any(p.startswith("pyyaml==") for p in doc["env"]["packages"])
    assert doc["started"] <= doc["ended"] and doc["vtool"]
    assert path.name == doc["key"].removeprefix("xxh128:") + ".json"


def test_staleness_names_each_cause(pipe: Workdir, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repro(pipe)
    ran(log)
    old_raw = lock(pipe)["stages"]["prepare"]["deps"]["data/raw"]
    pipe.write("data/raw/part2.csv", "id\n4\n5\n6\n")
    dry = repro(pipe, "--dry")
    assert actions(dry) == dict.fromkeys(STAGES, "would run") and ran(log) == []  # --dry runs nothing
    assert reasons(dry)["prepare"] == [f"dep data/raw changed: {old_raw[7:11]}… -> "
                                       f"{dry['stages'][0]['reasons'][0].split('-> ')[1]}"]
    assert reasons(dry)["featurize"] == ["after prepare runs"] and reasons(dry)["train"] == ["after featurize runs"]
    repro(pipe)
    assert ran(log) == list(STAGES)

    set_param(pipe, "train", "lr", 0.2)
    assert reasons(repro(pipe, "--dry"))["train"] == ["param params.yaml:train.lr changed: 0.1 -> 0.2"]
    set_param(pipe, "train", "lr", 0.1)

    pipe.write("src/featurize.py", pipe.read("src/featurize.py") + b"# tweak\n")
    why = reasons(repro(pipe, "--dry"))
    assert why["featurize"][0].startswith("dep src/featurize.py changed: ") and why["prepare"] == []
    pipe.git("checkout", "src/featurize.py")

    pipe.write("data/features/features.csv", "tampered\n")
    assert reasons(repro(pipe, "--dry"))["featurize"][0].startswith("out data/features changed: ")
    pipe.ok("checkout", "--force", "data/features")
    os.unlink(pipe.path("models/model.bin"))
    assert reasons(repro(pipe, "--dry"))["train"] == ["out models/model.bin is missing"]
    shutil.rmtree(pipe.path("data/features"))
    restored = repro(pipe)  # the same inputs ran before: the run cache puts the recorded outputs back
    assert actions(restored) == {"prepare": "up to date", "featurize": "restored", "train": "restored"}
    assert ran(log) == [] and pipe.read("data/features/features.csv").endswith(b"5,60\n6,60\n")

    text = pipe.read("vtool.yaml").decode().replace("python src/train.py", "python src/train.py  --again")
    pipe.write("vtool.yaml", text)
    assert reasons(repro(pipe, "--dry"))["train"] == ["command changed"]
    pipe.git("checkout", "vtool.yaml")

    here = fingerprint(pipe.root).python
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"python": "CPython 9.9.9"}))
    assert reasons(repro(pipe, "--dry"))["prepare"] == [f"python {here} -> CPython 9.9.9"]
    changed = [*fingerprint(pipe.root).packages, "numpy==2.0.0"]
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"packages": changed}))
    assert reasons(repro(pipe, "--dry")) == dict.fromkeys(STAGES, ["packages changed"])


def test_env_list_decides_which_components_make_a_stage_stale(pipe: Workdir, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe.ok("stage", "add", "train", "-d", "data/features", "-d", "src/train.py", "-o", "models/model.bin",
            "-m", "metrics.json", "-p", "params.yaml:train.lr,train.noise", "--env", "python", "--",
            "python src/train.py")
    repro(pipe)
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"packages": ["numpy==2.0.0"]}))
    listed = {s["name"]: s for s in pipe.ok("stage", "list", "--json").json()["stages"]}
    assert listed["train"]["up_to_date"] is True and listed["train"]["reasons"] == []
    assert listed["prepare"]["reasons"] == ["packages changed"] and listed["prepare"]["up_to_date"] is False
    assert lock(pipe)["stages"]["train"]["env"].keys() == {"python"}


def test_run_cache_restores_outputs_of_an_earlier_run(pipe: Workdir, log: Path) -> None:
    repro(pipe)
    ran(log)
    first_model, first_metrics = pipe.read("models/model.bin"), pipe.read("metrics.json")
    first_lock = pipe.read("vtool.lock")
    set_param(pipe, "train", "lr", 0.2)
    assert actions(repro(pipe))["train"] == "ran" and ran(log) == ["train"]
    assert pipe.read("models/model.bin") != first_model
    set_param(pipe, "train", "lr", 0.1)
    result = repro(pipe)
    assert actions(result)["train"] == "restored" and ran(log) == []
    assert pipe.read("models/model.bin") == first_model and pipe.read("metrics.json") == first_metrics
    assert pipe.read("vtool.lock") == first_lock
    assert pipe.status()["models/model.bin"]["state"] == "in sync"
    set_param(pipe, "train", "lr", 0.2)
    assert actions(repro(pipe, "--no-run-cache"))["train"] == "ran" and ran(log) == ["train"]


def test_run_cache_fetches_outputs_from_the_remote(pipe: Workdir, log: Path, remote_dir: Path) -> None:
    pipe.add_remote(remote_dir, default=True)
    pipe.loose_only()  # removes an object file by hand
    repro(pipe)
    pipe.ok("push")
    first_model = pipe.read("models/model.bin")
    model_oid = pipe.pointer("models/model.bin").oid
    set_param(pipe, "train", "lr", 0.2)
    repro(pipe)
    os.chmod(pipe.object_path(model_oid), 0o644)
    os.unlink(pipe.object_path(model_oid))
    ran(log)
    set_param(pipe, "train", "lr", 0.1)
    assert actions(repro(pipe))["train"] == "restored" and ran(log) == []
    assert pipe.read("models/model.bin") == first_model and model_oid in pipe.cache_oids()


def test_failing_stage_leaves_lock_and_outputs_record_alone(pipe: Workdir, log: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    repro(pipe)
    before = pipe.read("vtool.lock"), pipe.read("models/model.bin.vtool")
    records = sorted(pipe.path(".vtool/runs").rglob("*.json"))
    set_param(pipe, "train", "lr", 0.3)
    monkeypatch.setenv("TRAIN_FAIL", "3")
    result = pipe.fails("repro")
    assert "stage train failed: its command exited with code 3" in result.err
    assert "Traceback" not in result.err
    assert (pipe.read("vtool.lock"), pipe.read("models/model.bin.vtool")) == before
    assert sorted(pipe.path(".vtool/runs").rglob("*.json")) == records
    assert len(pipe.read("models/model.bin")) == 10  # what the command half wrote stays, unrecorded
    assert pipe.status()["models/model.bin"]["state"] == "modified"
    monkeypatch.delenv("TRAIN_FAIL")
    assert actions(repro(pipe))["train"] == "ran"


def test_named_stage_runs_with_what_it_needs_and_downstream_follows(pipe: Workdir, log: Path) -> None:
    assert actions(repro(pipe, "featurize")) == {"prepare": "ran", "featurize": "ran"}
    assert ran(log) == ["prepare", "featurize"]
    set_param(pipe, "prepare", "seed", 4)
    assert actions(repro(pipe, "prepare", "--downstream")) == dict.fromkeys(STAGES, "ran")
    assert actions(repro(pipe, "train", "--force")) == dict.fromkeys(STAGES, "ran")
    assert pipe.fails("repro", "nope", code=2).err.startswith("error: unknown stage 'nope'")


def test_lock_bytes_are_canonical_and_stable_across_runs_and_machines(pipe: Workdir, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = Workdir(tmp_path / "elsewhere" / "clone")
    other.root.parent.mkdir()
    shutil.copytree(pipe.root, other.root, symlinks=True)
    repro(pipe)
    first = pipe.read("vtool.lock")
    repro(pipe, "--force")
    assert pipe.read("vtool.lock") == first
    monkeypatch.setenv("USER", "someone-else")
    repro(other)
    assert other.read("vtool.lock") == first
    assert lockfile.dumps(lockfile.loads(first)) == first
    text = first.decode()
    assert socket.gethostname() not in text and str(pipe.root) not in text and "2026" not in text
    assert text.endswith("}\n") and list(json.loads(text)) == ["stages", "version"]


def test_two_branches_that_ran_different_stages_merge_without_conflict(pipe: Workdir) -> None:
    repro(pipe)
    pipe.commit("ran the pipeline")
    pipe.git("checkout", "-q", "-b", "prep")
    set_param(pipe, "prepare", "seed", 5)
    repro(pipe, "prepare")
    pipe.commit("prepare with seed 5")
    prep_entry = lock(pipe)["stages"]["prepare"]
    pipe.git("checkout", "-q", "main")
    pipe.ok("checkout")
    pipe.write("params.yaml", pipe.read("params.yaml").decode().replace("lr: 0.1", "lr: 0.5"))
    repro(pipe, "train")
    pipe.commit("train with lr 0.5")
    train_entry = lock(pipe)["stages"]["train"]
    git_in(pipe.root, "-c", "core.editor=true", "merge", "-q", "--no-edit", "prep")  # fails the test on conflict
    merged = lock(pipe)["stages"]
    assert merged["prepare"] == prep_entry and merged["train"] == train_entry
    assert lockfile.dumps(lockfile.loads(pipe.read("vtool.lock"))) == pipe.read("vtool.lock")


def test_outputs_the_command_did_not_write_are_refused(pipe: Workdir) -> None:
    pipe.ok("stage", "add", "prepare", "-d", "data/raw", "-o", "data/prepared", "--", "true")
    result = pipe.fails("repro", "prepare")
    assert "did not write data/prepared" in result.err and not pipe.path("vtool.lock").exists()


def test_missing_dep_is_named(pipe: Workdir) -> None:
    pipe.ok("stage", "add", "lonely", "-d", "data/nowhere", "-o", "out.txt", "--", "touch out.txt")
    assert "dep data/nowhere does not exist" in pipe.fails("repro", "lonely").err


def test_wdir_is_the_command_cwd(pipe: Workdir) -> None:
    pipe.write("sub/keep.txt", "x")
    pipe.ok("stage", "add", "where", "-w", "sub", "-o", "sub/cwd.txt", "--", "pwd > cwd.txt")
    repro(pipe, "where")
    assert pipe.read("sub/cwd.txt").decode().strip() == os.path.realpath(pipe.path("sub"))


def test_run_records_keep_the_verdicts_of_the_checks(pipe: Workdir, log: Path) -> None:
    declared = pipe.read("vtool.yaml")
    pipe.write("vtool.yaml", declared + b"checks:\n  data/prepared/train.csv:\n    rows: {min: 100}\n")
    result = pipe.fails("repro")
    assert "stage prepare: outputs not recorded, vtool.lock left as it was: 1 check(s) failed" in result.err
    assert not pipe.path("vtool.lock").exists() and not pipe.path("data/prepared.vtool").exists()
    assert not pipe.path(".vtool/runs").exists() and ran(log) == ["prepare"]
    pipe.write("vtool.yaml", declared + b"checks:\n  data/prepared/train.csv:\n    rows: {min: 5, max: 5}\n")
    assert actions(repro(pipe)) == dict.fromkeys(STAGES, "ran")
    record = json.loads(next(pipe.path(".vtool/runs/prepare").glob("*.json")).read_bytes())
    assert [(c["path"], c["rule"], c["status"]) for c in record["checks"]] == [("data/prepared/train.csv", "rows",
                                                                                 "ok")]


def _git_commit(project: Workdir, message: str) -> subprocess.CompletedProcess[str]:
    project.git("add", "-A")
    return subprocess.run(["git", "commit", "-q", "-m", message], cwd=project.root, capture_output=True, text=True,
                          check=False)


def test_pre_commit_hook_refuses_a_lock_that_does_not_match_the_outputs(pipe: Workdir) -> None:
    pipe.ok("install-hooks")
    repro(pipe)
    assert _git_commit(pipe, "ran").returncode == 0
    pipe.write("data/prepared/train.csv", "id,value\n1,1\n")
    pipe.add("data/prepared")  # the pointer follows the edit; vtool.lock still records the run's output
    refused = _git_commit(pipe, "hand edit")
    assert refused.returncode != 0
    assert "commit refused: vtool.lock records other data for data/prepared than the workspace holds" in refused.stderr
    assert pipe.git("log", "--format=%s", "-1").strip() == "ran"
    set_param(pipe, "prepare", "seed", 4)
    repro(pipe)
    assert _git_commit(pipe, "re-ran").returncode == 0
    pipe.write("metrics.json", "{}")
    pipe.write("models/model.bin", b"retrained by hand")
    pipe.add("models/model.bin")
    refused = _git_commit(pipe, "model and metrics edited").stderr
    assert "vtool.lock records other data for metrics.json, models/model.bin than the workspace holds" in refused
