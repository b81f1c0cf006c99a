"""`vtool install-hooks`: the hooks it writes, driven by real git commands (checkout, switch, commit, push)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from projectkit import Workdir, git_in

from vtool import manifest
from vtool import pointer as ptr
from vtool.hashing import OID_PREFIX

HOOKS = ("post-checkout", "pre-push", "pre-commit")
V1 = {"a.csv": "alpha 1\n", "sub/b.csv": "beta 1\n", "sub/deep/c.csv": "gamma\n"}
V2 = {"a.csv": "alpha 2\n", "sub/b.csv": "beta 1\n", "sub/deep/c.csv": "gamma\n", "e.csv": "epsilon\n"}
GIT_TIMEOUT_S = 120


def git_proc(root: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run git as a user would, hooks included, without requiring success."""
    return subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, text=True, check=False,
                          timeout=GIT_TIMEOUT_S)


def git_ok(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = git_proc(root, *args)
    assert proc.returncode == 0, f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc


def hooks_folder(root: Path) -> Path:
    return root / ".git" / "hooks"


def replace_tree(project: Workdir, base: str, files: dict[str, str]) -> None:
    """Make base hold exactly files."""
    shutil.rmtree(project.path(base), ignore_errors=True)
    project.write_tree(base, files)


def read_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def stored_oids(folder: Path) -> set[str]:
    return {OID_PREFIX + p.parent.name + p.name for p in folder.glob("??/*") if len(p.name) == 30}


def reachable(project: Workdir, pointer: ptr.Pointer) -> set[str]:
    """Every object a pointer reaches, read from the project's cache."""
    if pointer.kind == "file":
        return {pointer.oid}
    out = {pointer.oid}
    for _, entry in manifest.walk(project.manifest, pointer.oid):
        out.add(entry.oid)
    return out


@dataclass
class Hooked:
    """A project with a local-folder default remote and vtool's hooks installed, plus two data commits."""

    project: Workdir
    store: Path
    c1: str = ""
    c2: str = ""

    def commit_data(self, files: dict[str, str], model: str, message: str) -> str:
        replace_tree(self.project, "data", files)
        self.project.write("model.bin", model)
        self.project.ok("add", "data", "model.bin")
        return self.project.commit(message)


@pytest.fixture
def hooked(project: Workdir, tmp_path: Path) -> Hooked:
    store = tmp_path / "store"
    store.mkdir()
    project.add_remote(store, "--loose", default=True)
    project.write("README", "code\n")
    project.commit("remote and readme")
    project.ok("install-hooks")
    return Hooked(project, store)


@pytest.fixture
def history(hooked: Hooked) -> Hooked:
    """Two commits with different data, both pushed to the vtool remote; HEAD at the second on main."""
    hooked.c1 = hooked.commit_data(V1, "weights 1\n", "data v1")
    hooked.project.ok("push")
    hooked.c2 = hooked.commit_data(V2, "weights 2\n", "data v2")
    hooked.project.ok("push")
    return hooked


def clone(source: Path, dest: Path) -> Workdir:
    """A fresh clone: empty cache, no data in the workspace; then vtool's hooks installed in it."""
    git_in(source.parent, "clone", "-q", str(source), str(dest))
    copy = Workdir(dest)
    copy.ok("install-hooks")
    return copy


# install-hooks itself


def test_install_writes_executable_posix_hooks_and_is_idempotent(project: Workdir) -> None:
    result = project.ok("install-hooks", "--json").json()
    assert result["hooks_dir"] == str(hooks_folder(project.root))
    assert [(h["name"], h["action"], h["previous"]) for h in result["hooks"]] == [
        (name, "installed", None) for name in HOOKS
    ]
    before = {}
    for name in HOOKS:
        path = hooks_folder(project.root) / name
        assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0o111
        text = path.read_text()
        assert text.startswith("#!/bin/sh\n")
        assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0
        if shutil.which("dash"):
            assert subprocess.run(["dash", "-n", str(path)], check=False).returncode == 0
        before[name] = path.read_bytes()
    again = project.ok("install-hooks", "--json").json()
    assert [h["action"] for h in again["hooks"]] == ["unchanged"] * 3
    assert {name: (hooks_folder(project.root) / name).read_bytes() for name in HOOKS} == before
    assert sorted(p.name for p in hooks_folder(project.root).iterdir() if not p.name.endswith(".sample")) == \
        sorted(HOOKS)


def test_an_older_vtool_hook_is_updated_in_place(project: Workdir) -> None:
    project.ok("install-hooks")
    path = hooks_folder(project.root) / "pre-commit"
    path.write_text(path.read_text().replace("run_vtool git-hook pre-commit", "run_vtool git-hook old-name"))
    result = project.ok("install-hooks", "--json").json()
    assert [h["action"] for h in result["hooks"]] == ["unchanged", "unchanged", "updated"]
    assert "git-hook pre-commit" in path.read_text()
    assert not (hooks_folder(project.root) / "pre-commit.pre-vtool").exists()


def test_hooks_embed_this_interpreter_and_fall_back_to_path(project: Workdir) -> None:
    import sys

    project.ok("install-hooks")
    text = (hooks_folder(project.root) / "post-checkout").read_text()
    assert f"VTOOL_PYTHON={sys.executable}\n" in text or f"VTOOL_PYTHON='{sys.executable}'\n" in text
    assert 'command vtool "$@"' in text


def test_core_hooks_path_is_respected(hooked: Hooked) -> None:
    project = hooked.project
    project.git("config", "core.hooksPath", "githooks")
    result = project.ok("install-hooks", "--json").json()
    assert result["hooks_dir"] == str(project.root / "githooks")
    assert all((project.root / "githooks" / name).is_file() for name in HOOKS)
    # The hooks there are the ones git runs: a stale pointer is refused.
    replace_tree(project, "data", V1)
    project.ok("add", "data")
    project.git("add", "data.vtool", ".gitignore")
    project.write("data/a.csv", "changed after add\n")
    refused = git_proc(project.root, "commit", "-m", "stale")
    assert refused.returncode != 0
    assert "vtool add data && git add data.vtool" in refused.stderr


def test_a_linked_worktree_installs_into_the_shared_hooks(hooked: Hooked, tmp_path: Path) -> None:
    project = hooked.project
    worktree = tmp_path / "wt"
    project.git("worktree", "add", "-q", str(worktree))
    result = Workdir(worktree).ok("install-hooks", "--json").json()
    assert result["hooks_dir"] == str(hooks_folder(project.root))
    assert [h["action"] for h in result["hooks"]] == ["unchanged"] * 3


def test_existing_user_hooks_are_chained_and_keep_running(project: Workdir, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    originals = {}
    for name in HOOKS:
        path = hooks_folder(project.root) / name
        body = f'#!/bin/sh\necho "$@" > "{marks}/{name}.args"\ncat > "{marks}/{name}.stdin"\nexit 0\n'
        path.write_text(body)
        path.chmod(0o755)
        originals[name] = path.read_bytes()
    result = project.ok("install-hooks", "--json").json()
    assert [h["action"] for h in result["hooks"]] == ["chained"] * 3
    for name in HOOKS:
        assert (hooks_folder(project.root) / f"{name}.pre-vtool").read_bytes() == originals[name]
    installed = {name: (hooks_folder(project.root) / name).read_bytes() for name in HOOKS}
    again = project.ok("install-hooks", "--json").json()
    assert [(h["action"], h["previous"]) for h in again["hooks"]] == [
        ("unchanged", str(hooks_folder(project.root) / f"{name}.pre-vtool")) for name in HOOKS
    ]
    assert {name: (hooks_folder(project.root) / name).read_bytes() for name in HOOKS} == installed

    git_ok(project.root, "commit", "-q", "--allow-empty", "-m", "one")
    assert (marks / "pre-commit.args").exists()
    git_ok(project.root, "checkout", "-q", "-b", "other")
    prev, new, flag = (marks / "post-checkout.args").read_text().split()
    assert (prev, flag) == (new, "1")
    bare = tmp_path / "bare.git"
    git_in(tmp_path, "init", "-q", "--bare", str(bare))
    git_ok(project.root, "push", "-q", str(bare), "other")
    assert (marks / "pre-push.args").read_text().split() == [str(bare), str(bare)]
    head = project.git("rev-parse", "HEAD").strip()
    assert (marks / "pre-push.stdin").read_text() == f"refs/heads/other {head} refs/heads/other {'0' * 40}\n"


def test_a_failing_user_hook_still_fails_the_commit(project: Workdir) -> None:
    path = hooks_folder(project.root) / "pre-commit"
    path.write_text("#!/bin/sh\necho 'user hook says no' >&2\nexit 3\n")
    path.chmod(0o755)
    project.ok("install-hooks")
    refused = git_proc(project.root, "commit", "-q", "--allow-empty", "-m", "nope")
    assert refused.returncode != 0
    assert "user hook says no" in refused.stderr


def test_a_foreign_hook_is_never_overwritten_when_the_chain_name_is_taken(project: Workdir) -> None:
    folder = hooks_folder(project.root)
    (folder / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    (folder / "pre-commit.pre-vtool").write_text("#!/bin/sh\necho older\n")
    result = project.fails("install-hooks")
    assert "merge the two into one hook by hand" in result.err
    assert (folder / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"
    assert (folder / "pre-commit.pre-vtool").read_text() == "#!/bin/sh\necho older\n"


# post-checkout


def test_git_checkout_and_switch_move_the_data(history: Hooked) -> None:
    project = history.project
    git_ok(project.root, "checkout", "-q", history.c1)
    assert read_tree(project.path("data")) == V1
    assert project.read("model.bin") == b"weights 1\n"
    assert project.status()["data"]["state"] == "in sync"
    git_ok(project.root, "switch", "-q", "main")
    assert read_tree(project.path("data")) == V2
    assert project.read("model.bin") == b"weights 2\n"


def test_checkout_in_a_fresh_clone_fetches_from_the_remote(history: Hooked, tmp_path: Path) -> None:
    history.project.git("branch", "v1", history.c1)
    copy = clone(history.project.root, tmp_path / "clone")
    assert not copy.path("data").exists() and not copy.cache_oids()
    done = git_ok(copy.root, "switch", "v1")
    assert read_tree(copy.path("data")) == V1
    assert copy.read("model.bin") == b"weights 1\n"
    assert "vtool: data updated" in done.stderr
    git_ok(copy.root, "checkout", "-q", "main")
    assert read_tree(copy.path("data")) == V2


def test_a_file_checkout_does_not_sync_data(history: Hooked) -> None:
    project = history.project
    shutil.rmtree(project.path("data"))
    project.write("README", "edited\n")
    git_ok(project.root, "checkout", "--", "README")
    assert project.read("README") == b"code\n"
    assert not project.path("data").exists()


def test_checkout_without_a_remote_reports_and_still_succeeds(history: Hooked, tmp_path: Path) -> None:
    copy = clone(history.project.root, tmp_path / "clone")
    copy.ok("remote", "remove", "origin")
    result = git_proc(copy.root, "checkout", "-q", history.c1)
    assert result.returncode == 0
    assert copy.git("rev-parse", "HEAD").strip() == history.c1
    assert "no remote is configured" in result.stderr
    assert "the git checkout is done, but the data was not updated" in result.stderr
    assert "Traceback" not in result.stderr


def test_checkout_that_would_lose_data_keeps_it_and_succeeds(history: Hooked) -> None:
    project = history.project
    project.write("data/a.csv", "precious, never added\n")
    result = git_proc(project.root, "checkout", "-q", history.c1)
    assert result.returncode == 0
    assert "would lose" in result.stderr
    assert project.read("data/a.csv") == b"precious, never added\n"


def test_a_dataset_absent_at_the_new_commit_loses_its_data(history: Hooked) -> None:
    project = history.project
    project.write("extra.bin", "only on main\n")
    project.ok("add", "extra.bin")
    project.commit("extra")
    git_ok(project.root, "checkout", "-q", history.c2)
    assert not project.path("extra.bin").exists()


def test_vtool_checkout_rev_is_not_deadlocked_by_its_own_hook(history: Hooked) -> None:
    project = history.project
    result = project.run_process("checkout", history.c1)
    assert result.code == 0, result.err
    assert read_tree(project.path("data")) == V1
    assert "vtool: data updated" not in result.err


# pre-commit


def test_commit_of_a_stale_pointer_is_refused_until_data_is_added(hooked: Hooked) -> None:
    project = hooked.project
    replace_tree(project, "data", V1)
    project.ok("add", "data")
    project.git("add", "data.vtool", ".gitignore")
    project.write("data/a.csv", "modified after add\n")
    head = project.git("rev-parse", "HEAD").strip()

    refused = git_proc(project.root, "commit", "-m", "stale")
    assert refused.returncode != 0
    assert "the staged pointer of data does not match the data in the workspace" in refused.stderr
    assert "vtool add data && git add data.vtool" in refused.stderr
    assert project.git("rev-parse", "HEAD").strip() == head

    project.ok("add", "data")  # the workspace pointer is right now, but the staged one is not
    assert git_proc(project.root, "commit", "-m", "still stale").returncode != 0

    project.git("add", "data.vtool")
    git_ok(project.root, "commit", "-q", "-m", "fresh")
    staged = ptr.loads(project.git("show", "HEAD:data.vtool").encode(), "data.vtool")
    assert staged.oid == project.pointer("data").oid


def test_commits_that_stage_no_stale_pointer_go_through(hooked: Hooked) -> None:
    project = hooked.project
    hooked.commit_data(V1, "weights 1\n", "data v1")
    project.write("data/a.csv", "work in progress\n")  # data edited, its pointer not staged
    project.write("README", "code change\n")
    git_ok(project.root, "commit", "-q", "-am", "code only")
    shutil.rmtree(project.path("data"))  # a pointer staged with no data to contradict it: notes edited
    noted = dataclasses.replace(project.pointer("data"), meta={"owner": "ana"})
    project.write("data.vtool", ptr.dumps(noted))
    git_ok(project.root, "commit", "-q", "-am", "notes only")


def test_commit_all_checks_the_pointer_it_stages(hooked: Hooked) -> None:
    project = hooked.project
    hooked.commit_data(V1, "weights 1\n", "data v1")
    project.ok("add", "data")
    project.write("model.bin", "weights 2\n")
    project.ok("add", "model.bin")
    project.write("model.bin", "weights 3, not added\n")
    refused = git_proc(project.root, "commit", "-a", "-m", "stale via -a")
    assert refused.returncode != 0
    assert "model.bin" in refused.stderr


# pre-push


@pytest.fixture
def bare(hooked: Hooked, tmp_path: Path) -> Path:
    path = tmp_path / "bare.git"
    git_in(tmp_path, "init", "-q", "--bare", str(path))
    hooked.project.git("remote", "add", "origin", str(path))
    return path


def test_git_push_pushes_the_data_of_every_pushed_commit(hooked: Hooked, bare: Path) -> None:
    project = hooked.project
    c1 = hooked.commit_data(V1, "weights 1\n", "data v1")
    p1 = [project.pointer("data"), project.pointer("model.bin")]
    hooked.commit_data(V2, "weights 2\n", "data v2")
    p2 = [project.pointer("data"), project.pointer("model.bin")]
    replace_tree(project, "data", {"never.csv": "committed? no\n"})
    project.ok("add", "data")
    uncommitted = reachable(project, project.pointer("data"))
    assert not stored_oids(hooked.store)

    pushed = git_proc(project.root, "push", "-q", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr
    stored = stored_oids(hooked.store)
    for pointer in p1 + p2:
        assert reachable(project, pointer) <= stored
    committed = {oid for pointer in p1 + p2 for oid in reachable(project, pointer)}
    assert not (uncommitted - committed) & stored
    assert git_in(bare, "rev-parse", "main").strip() == project.git("rev-parse", "HEAD").strip()
    assert c1 in git_in(bare, "rev-list", "main")


def test_a_failed_data_push_fails_the_git_push(hooked: Hooked, bare: Path) -> None:
    project = hooked.project
    hooked.commit_data(V1, "weights 1\n", "data v1")
    git_ok(project.root, "push", "-q", "origin", "main")
    git_ok(project.root, "push", "-q", "origin", "main:doomed")
    shutil.rmtree(hooked.store)

    git_ok(project.root, "push", "-q", "origin", ":doomed")  # a deletion sends no data
    hooked.commit_data(V2, "weights 2\n", "data v2")
    refused = git_proc(project.root, "push", "-q", "origin", "main")
    assert refused.returncode != 0
    assert "does not exist" in refused.stderr
    assert git_in(bare, "rev-parse", "main").strip() != project.git("rev-parse", "HEAD").strip()


def test_a_commit_whose_data_is_nowhere_fails_the_push(hooked: Hooked, bare: Path) -> None:
    hooked.project.loose_only()
    project = hooked.project
    hooked.commit_data(V1, "weights 1\n", "data v1")
    oid = project.pointer("model.bin").oid
    os.chmod(project.object_path(oid), 0o644)
    project.object_path(oid).unlink()
    refused = git_proc(project.root, "push", "-q", "origin", "main")
    assert refused.returncode != 0
    assert oid in refused.stderr
    assert "git push --no-verify" in refused.stderr


def test_push_from_a_clone_without_the_data_works_when_the_remote_has_it(history: Hooked, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    git_in(tmp_path, "init", "-q", "--bare", str(bare))
    copy = clone(history.project.root, tmp_path / "clone")
    copy.git("remote", "set-url", "origin", str(bare))
    copy.write("README", "code only\n")
    git_ok(copy.root, "commit", "-q", "-am", "code change")
    assert not copy.cache_oids()
    pushed = git_proc(copy.root, "push", "-q", "origin", "main")
    assert pushed.returncode == 0, pushed.stderr
