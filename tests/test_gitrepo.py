"""gitrepo.resolve: any revision git accepts becomes a commit sha, with as few git processes as it takes."""

from __future__ import annotations

import subprocess

import pytest
from projectkit import Workdir

from vtool import gitrepo
from vtool.errors import GitError


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the argv of every git process gitrepo starts."""
    calls: list[list[str]] = []
    real = subprocess.run

    def run(argv: list[str], *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return real(argv, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(gitrepo.subprocess, "run", run)
    return calls


def test_a_commit_sha_is_peeled_in_one_git_call(project: Workdir, git_calls: list[list[str]]) -> None:
    sha = project.commit("first")
    git_calls.clear()
    assert gitrepo.resolve(project.root, "HEAD") == sha
    assert len(git_calls) == 2  # a name: looked up, then peeled (`:/text` must not swallow the suffix)
    git_calls.clear()
    assert gitrepo.resolve(project.root, sha) == sha
    assert git_calls == [["git", "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}"]]


def test_a_full_sha_that_is_no_commit_is_refused(project: Workdir) -> None:
    project.write("notes.txt", "n")
    project.commit("first")
    tree = project.git("rev-parse", "HEAD^{tree}").strip()
    for rev in (tree, "0" * 40, "f" * 64):
        with pytest.raises(GitError, match="unknown revision"):
            gitrepo.resolve(project.root, rev)
    assert gitrepo.resolve(project.root, ":/first") == project.git("rev-parse", "HEAD").strip()
