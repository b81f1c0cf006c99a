"""A real three-stage pipeline (prepare -> featurize -> train) written into a test project, and helpers around it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from projectkit import Workdir

from vtool.pipeline.env import OVERRIDE_ENV

LOG_ENV = "PIPELINE_LOG"

PREPARE = """\
import os, sys, yaml
src, dest = sys.argv[1], sys.argv[2]
seed = yaml.safe_load(open("params.yaml"))["prepare"]["seed"]
rows = []
for name in sorted(os.listdir(src)):
    rows += [line for line in open(os.path.join(src, name)).read().splitlines()[1:] if line]
os.makedirs(dest, exist_ok=True)
with open(os.path.join(dest, "train.csv"), "w") as out:
    out.write("id,value\\n" + "".join(f"{r},{seed}\\n" for r in rows))
with open(os.path.join(dest, "count.txt"), "w") as out:
    out.write(f"{len(rows)}\\n")
if os.environ.get("PIPELINE_LOG"):
    open(os.environ["PIPELINE_LOG"], "a").write("prepare\\n")
print("prepare: done")
"""

UTIL = """\
def transform(value):
    return value * 2
"""

FEATURIZE = """\
import os, sys, yaml
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from util import transform
scale = yaml.safe_load(open("params.yaml"))["featurize"]["scale"]
rows = open("data/prepared/train.csv").read().splitlines()[1:]
os.makedirs("data/features", exist_ok=True)
with open("data/features/features.csv", "w") as out:
    for row in rows:
        ident, value = row.split(",")
        out.write(f"{ident},{transform(int(value)) * scale}\\n")
if os.environ.get("PIPELINE_LOG"):
    open(os.environ["PIPELINE_LOG"], "a").write("featurize\\n")
"""

TRAIN = """\
import hashlib, json, os, sys, yaml
params = yaml.safe_load(open("params.yaml"))["train"]
features = open("data/features/features.csv", "rb").read()
model = hashlib.sha256(features + str(params["lr"]).encode()).digest() * 64
if params.get("noise"):
    model += os.urandom(16)
os.makedirs("models", exist_ok=True)
with open("models/model.bin", "wb") as out:
    if os.environ.get("TRAIN_FAIL"):
        out.write(model[:10])
        sys.exit(int(os.environ["TRAIN_FAIL"]))
    out.write(model)
with open("metrics.json", "w") as out:
    json.dump({"loss": round(1 / (1 + len(features) * params["lr"]), 6)}, out)
if os.environ.get("PIPELINE_LOG"):
    open(os.environ["PIPELINE_LOG"], "a").write("train\\n")
"""

PARAMS = """\
prepare:
  seed: 3
featurize:
  scale: 10
train:
  lr: 0.1
  noise: false
"""

RAW = {"part1.csv": "id\n1\n2\n3\n", "part2.csv": "id\n4\n5\n"}
STAGES = ("prepare", "featurize", "train")


def python_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put this interpreter first on PATH, so `python` in a stage command is the one with pyyaml."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the pipeline's scripts note that they ran; `python` in stage commands is this interpreter."""
    path = tmp_path / "ran.log"
    monkeypatch.setenv(LOG_ENV, str(path))
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    python_on_path(monkeypatch)
    return path


@pytest.fixture
def pipe(project: Workdir, log: Path) -> Workdir:
    """The project with the three-stage pipeline declared and committed, not yet run."""
    write_pipeline(project)
    return project


def repro(project: Workdir, *args: str) -> dict[str, object]:
    """Run `vtool repro ARGS --json` and return its result."""
    return project.ok("repro", *args, "--json").json()


def write_pipeline(project: Workdir) -> None:
    """Write scripts, params and raw data, track the raw data, declare the three stages and commit."""
    project.write("src/prepare.py", PREPARE)
    project.write("src/util.py", UTIL)
    project.write("src/featurize.py", FEATURIZE)
    project.write("src/train.py", TRAIN)
    project.write("params.yaml", PARAMS)
    project.write_tree("data/raw", RAW)
    project.add("data/raw")
    project.ok("stage", "add", "prepare", "-d", "data/raw", "-d", "src/prepare.py", "-o", "data/prepared",
               "-p", "params.yaml:prepare", "--", "python", "src/prepare.py", "data/raw", "data/prepared")
    project.ok("stage", "add", "featurize", "-d", "data/prepared", "-d", "src/featurize.py", "-o", "data/features",
               "-p", "params.yaml:featurize", "--", "python src/featurize.py")
    project.ok("stage", "add", "train", "-d", "data/features", "-d", "src/train.py", "-o", "models/model.bin",
               "-m", "metrics.json", "-p", "params.yaml:train.lr,train.noise", "--", "python src/train.py")
    project.commit("pipeline")


def ran(log: Path) -> list[str]:
    """Return the stages whose scripts ran since the log was last cleared, and clear it."""
    if not log.exists():
        return []
    names = log.read_text().split()
    log.unlink()
    return names


def set_param(project: Workdir, section: str, key: str, value: object) -> None:
    """Change one value in params.yaml, keeping the rest."""
    import yaml

    doc = yaml.safe_load(project.read("params.yaml"))
    doc[section][key] = value
    project.write("params.yaml", yaml.safe_dump(doc, sort_keys=False))


def actions(result: dict[str, object]) -> dict[str, str]:
    """Map each stage of a `repro --json` result to what repro did."""
    return {s["stage"]: s["action"] for s in result["stages"]}  # type: ignore[index, union-attr]


def reasons(result: dict[str, object]) -> dict[str, list[str]]:
    """Map each stage of a `repro --json` result to its reasons."""
    return {s["stage"]: s["reasons"] for s in result["stages"]}  # type: ignore[index, union-attr]


def lock(project: Workdir) -> dict[str, object]:
    """Return vtool.lock decoded."""
    return json.loads(project.read("vtool.lock"))
