"""check-repro: R(m) with each factor failing alone, the everyday edit-repro-commit flow, tags, and --rerun."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pipelinekit import lock, log, pipe, repro, set_param
from projectkit import Workdir

from vtool.hashing import hash_bytes
from vtool.pipeline.env import OVERRIDE_ENV, fingerprint

__all__ = ["log", "pipe"]
MODEL = "models/model.bin"
OUTPUTS = ["data/features", "data/prepared", "metrics.json", MODEL]


def verdicts(project: Workdir, *args: str, code: int = 0) -> list[dict[str, object]]:
    result = project.run("check-repro", *args, "--json")
    assert result.code == code, result.err
    return result.json()["verdicts"]


def factors(verdict: dict[str, object]) -> dict[str, list[str] | None]:
    """Map each failing factor to its reasons (None where it holds)."""
    return {f: None if verdict[f]["ok"] else verdict[f]["reasons"] for f in ("data", "code", "env")}  # type: ignore


def by_output(found: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {v["output"]: v for v in found}  # type: ignore[misc]


@pytest.fixture
def committed(pipe: Workdir, remote_dir: Path) -> Workdir:
    """The pipeline run, committed and pushed to a local remote."""
    pipe.add_remote(remote_dir, "--loose", default=True)  # tests below delete single objects from the remote
    repro(pipe)
    pipe.commit("ran the pipeline")
    pipe.ok("push")
    return pipe


def test_a_clean_run_is_reproducible(committed: Workdir) -> None:
    found = verdicts(committed)
    assert sorted(v["output"] for v in found) == OUTPUTS
    assert all(v["reproducible"] and v["rev"] == "HEAD" for v in found)
    assert all(factors(v) == {"data": None, "code": None, "env": None} for v in found)
    text = committed.ok("check-repro").out
    assert f"HEAD {MODEL}: reproducible\n" in text


def _delete_object(project: Workdir, remote: Path, oid: str) -> None:
    project.drop_object(oid)
    path = remote / oid[7:9] / oid[9:]
    os.chmod(path, 0o644)
    os.unlink(path)


def test_data_factor_fails_alone_when_an_input_is_gone_from_cache_and_remote(committed: Workdir,
                                                                            remote_dir: Path) -> None:
    raw = committed.ok("ls", "--json", "data/raw").json()["files"][0]["oid"]
    _delete_object(committed, remote_dir, raw)
    found = by_output(verdicts(committed, MODEL, "data/prepared", code=1))
    assert factors(found[MODEL]) == {"data": ["1 object(s) missing on origin"], "code": None, "env": None}
    assert found["data/prepared"]["reproducible"] is False
    committed.ok("remote", "remove", "origin")
    reasons = factors(by_output(verdicts(committed, MODEL, code=1))[MODEL])["data"]
    assert reasons == ["1 object(s) missing from the cache, and no remote is configured"]


def test_data_factor_fails_when_a_stage_used_another_version_than_its_producer_made(committed: Workdir) -> None:
    set_param(committed, "prepare", "seed", 9)
    repro(committed, "prepare")  # featurize and train still record the old data/prepared
    committed.commit("only prepare re-ran")
    found = by_output(verdicts(committed, code=1))
    assert found["data/prepared"]["reproducible"] is True
    data = factors(found[MODEL])["data"]
    assert data is not None and data[0].startswith("featurize used data/prepared ")
    assert "but prepare recorded" in data[0]
    assert factors(found[MODEL])["code"] is None and factors(found[MODEL])["env"] is None


def test_code_factor_fails_alone_when_code_changed_after_the_run(committed: Workdir) -> None:
    committed.write("src/train.py", committed.read("src/train.py") + b"# changed later\n")
    committed.commit("edit train.py without re-running")
    found = by_output(verdicts(committed, code=1))
    assert factors(found[MODEL]) == {"data": None, "code": ["train: src/train.py changed at HEAD"], "env": None}
    assert found["data/prepared"]["reproducible"] is True  # train is not among its ancestors
    set_param(committed, "train", "lr", 0.7)
    committed.commit("and the params")
    reasons = factors(by_output(verdicts(committed, MODEL, code=1))[MODEL])["code"]
    assert "train: param params.yaml:train.lr is 0.7 at HEAD, the run used 0.1" in reasons


def test_edit_repro_commit_is_reproducible(committed: Workdir) -> None:
    committed.write("src/util.py", "def transform(value):\n    return value * 3\n")
    repro(committed, "--force")  # the run sees src/util.py uncommitted; the commit then holds those bytes
    committed.commit("triple")
    assert all(v["reproducible"] for v in verdicts(committed))
    (record,) = committed.path(".vtool/runs/featurize").glob("*.json")  # same key: the newer run replaced it
    assert json.loads(record.read_bytes())["uncommitted"] == {"src/util.py": hash_bytes(committed.read("src/util.py"))}


def test_code_factor_fails_alone_for_a_run_that_saw_an_experiment_later_reverted(committed: Workdir) -> None:
    original = committed.read("src/util.py")
    committed.write("src/util.py", "def transform(value):\n    return value * 5\n")
    repro(committed, "featurize", "--force")  # src/util.py is not a declared dep: only the run record knows
    committed.write("src/util.py", original)
    committed.commit("outputs of the experiment, code reverted")
    found = by_output(verdicts(committed, "data/features", code=1))
    assert factors(found["data/features"]) == {
        "data": None, "env": None,
        "code": ["prepare: the run saw uncommitted src/util.py, which differs at HEAD",
                 "featurize: the run saw uncommitted src/util.py, which differs at HEAD"]}


def test_env_factor_fails_alone_for_another_python_or_package(committed: Workdir,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    here = fingerprint(committed.root).python
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"python": "CPython 3.12.3"}))
    found = by_output(verdicts(committed, MODEL, code=1))
    assert factors(found[MODEL]) == {"data": None, "code": None, "env": [
        f"prepare: python {here} -> CPython 3.12.3", f"featurize: python {here} -> CPython 3.12.3",
        f"train: python {here} -> CPython 3.12.3"]}
    base = [p for p in fingerprint(committed.root).packages if not p.startswith("numpy==")]
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"packages": [*base, "numpy==1.26.4"]}))
    repro(committed, "--force")
    committed.commit("ran with numpy 1.26.4")
    assert all(v["reproducible"] for v in verdicts(committed))
    monkeypatch.setenv(OVERRIDE_ENV, json.dumps({"packages": [*base, "numpy==2.0.0"]}))
    env = factors(by_output(verdicts(committed, MODEL, code=1))[MODEL])["env"]
    assert env is not None and "train: packages numpy 1.26.4 -> 2.0.0" in env


def test_all_tags_audit_one_line_per_tag_and_output(committed: Workdir) -> None:
    committed.git("tag", "v1")
    committed.write("src/train.py", committed.read("src/train.py") + b"# changed later\n")
    committed.commit("edit")
    committed.git("tag", "-a", "v2", "-m", "release 2")
    result = committed.run("check-repro", MODEL, "--all-tags")
    assert result.code == 1
    lines = [line for line in result.out.splitlines() if not line.startswith(" ")]
    assert lines == [f"v1 {MODEL}: reproducible", f"v2 {MODEL}: NOT reproducible"]
    assert "    code: train: src/train.py changed at v2" in result.out
    revs = [(v["rev"], v["reproducible"]) for v in verdicts(committed, MODEL, "--rev", "v1", "--rev", "v1", code=0)]
    assert revs == [("v1", True), ("v1", True)]


def test_rerun_reports_bitwise_identity_apart_from_r(committed: Workdir) -> None:
    found = by_output(verdicts(committed, MODEL, "--rerun"))
    rerun = found[MODEL]["rerun"]
    model = lock(committed)["stages"]["train"]["outs"][MODEL]
    assert rerun == {"identical": True, "error": None, "outputs": {MODEL: {"recorded": model, "rerun": model}}}
    assert committed.git("worktree", "list").count("\n") == 1
    assert not list(committed.path(".vtool/tmp").iterdir())
    set_param(committed, "train", "noise", True)  # training that is not deterministic
    repro(committed)
    committed.commit("noisy training")
    noisy = by_output(verdicts(committed, MODEL, "--rerun"))[MODEL]
    assert noisy["reproducible"] is True and noisy["rerun"]["identical"] is False
    outs = noisy["rerun"]["outputs"][MODEL]
    assert outs["recorded"] == lock(committed)["stages"]["train"]["outs"][MODEL] != outs["rerun"]
    assert "rerun differs" in committed.ok("check-repro", MODEL, "--rerun").out
    assert committed.git("worktree", "list").count("\n") == 1


def test_unknown_output_is_a_usage_error(committed: Workdir) -> None:
    assert "data/raw: not an output of any stage at HEAD" in committed.fails("check-repro", "data/raw", code=2).err
