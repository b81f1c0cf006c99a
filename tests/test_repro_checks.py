"""repro runs the checks covering a stage's outputs and refuses to record outputs that fail them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipelinekit import LOG_ENV, python_on_path, set_param, write_pipeline
from projectkit import Workdir

from vtool.pipeline.env import OVERRIDE_ENV

CHECK = """\
checks:
  data/prepared/train.csv:
    schema:
      fields:
        - {name: id, type: integer, constraints: {unique: true}}
        - {name: value, type: integer, constraints: {maximum: 5}}
    rows: {min: 5}
"""


@pytest.fixture
def pipe(project: Workdir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "ran.log"))
    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    python_on_path(monkeypatch)
    write_pipeline(project)
    project.write("vtool.yaml", project.read("vtool.yaml").decode() + CHECK)
    return project


def test_outputs_failing_their_checks_are_not_recorded_and_the_old_lock_stays(pipe: Workdir) -> None:
    pipe.ok("repro")  # seed 3 <= maximum 5: passes, recorded
    lock_before = pipe.read("vtool.lock")
    pointer_before = pipe.read("data/prepared.vtool")
    set_param(pipe, "prepare", "seed", 9)
    result = pipe.fails("repro")
    (error,) = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert error == (
        "error: stage prepare: outputs not recorded, vtool.lock left as it was: 1 check(s) failed; first: "
        "data/prepared/train.csv: schema value: above maximum 5: 5 row(s), first line 2 ('9'), line 3 ('9'), "
        "line 4 ('9'), line 5 ('9'), line 6 ('9')")
    assert pipe.read("vtool.lock") == lock_before
    assert pipe.read("data/prepared.vtool") == pointer_before
    set_param(pipe, "prepare", "seed", 4)
    pipe.ok("repro")
    assert pipe.read("vtool.lock") != lock_before


def test_a_first_output_failing_its_check_gets_no_pointer(pipe: Workdir) -> None:
    set_param(pipe, "prepare", "seed", 8)
    assert "outputs not recorded" in pipe.fails("repro").err
    assert not pipe.path("data/prepared.vtool").exists()
    assert not pipe.path("vtool.lock").exists()
