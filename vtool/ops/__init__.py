"""One plain function per command; each returns a frozen dataclass, reports through `progress`, never prints.

Which module holds which command (the CLI calls exactly one of these per command):

    init.py        vtool init
    settings.py    vtool config KEY [VALUE]
    remotes.py     vtool remote add / list / remove / default
    add.py         vtool add
    move.py        vtool rm, vtool mv (journal.py: their roll-forward journal)
    status.py      vtool status
    precommit.py   the pre-commit hook (the staged pointers and vtool.lock against the workspace)
    checkout.py    vtool checkout [TARGETS]; update_workspace, THE recipe that makes the workspace match
                   pointers (plan, refuse, then write), used by every command that does
    pull.py        vtool pull (fetch, then update_workspace; apart so a local checkout imports no remote layer)
    switch.py      vtool checkout REV, vtool checkout REV -- TARGETS (rollback); the post-checkout hook
    sync.py        vtool push, vtool fetch, vtool status --remote; the pre-push hook
    history.py     vtool diff, vtool log, vtool ls
    gc.py          vtool gc (gc_remote.py: gc -r on a packed remote)
    verify.py      vtool verify
    hooks.py       vtool install-hooks (the hook scripts and their installer)
    read.py        vtool.api.open / read_bytes (one tracked file at any revision, verified)
    stage.py       vtool stage add / list
    repro.py       vtool repro (runstage.py runs one stage, stagestate.py says whether it is stale)
    lineage.py     vtool lineage
    checkrepro.py  vtool check-repro (rerun.py: --rerun in a temporary worktree)
    validate.py    vtool validate (checkdata.py: the files a check reads)

Shared by all of them:

    project.py     open_project (root, config, cache, stat cache, locks), Project.scan, datasets
    targets.py     which pointers an op works on (workspace or revision, whole or a path inside)
    objects.py     the objects a set of pointers reaches: collect, and reach(), the one walk of manifest
                   trees by object (manifest.by_level is the one level-at-a-time visit, manifest.walk by path)
    pipesource.py  the pipeline (stages, lock, run records) as the workspace or a commit holds it
"""
