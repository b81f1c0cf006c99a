"""Attacks and accidents beyond the hostile-input table: sizes that cost memory, full disks, special files.

Each test runs a real command (in-process, or as a process where limits or memory are measured) on a
real git repo and asserts what a user sees: exit code, one `error:` or `warning:` line, bytes on disk.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import xxhash
from projectkit import Workdir

from vtool import manifest
from vtool.config import RemoteConfig
from vtool.errors import CorruptObjectError, FormatError
from vtool.hashing import OID_PREFIX, hash_bytes
from vtool.manifest import Entry
from vtool.remote.base import object_key
from vtool.remote.local import LocalRemote

MiB = 1 << 20
HUGE = 256 * MiB  # twice the manifest cap
# Peak memory of a whole `vtool status` process that refuses the huge object (python, yaml, sqlite: ~40 MiB).
MAX_RSS_MIB = 120
TIMEOUT_S = 60
# RLIMIT_FSIZE: any write that would grow a file past this fails (EFBIG), as on a full disk.
FILE_SIZE_LIMIT = 4096
FILES = 200
BLOCKED_S = 10.0


def _zeros_oid(size: int) -> str:
    hasher = xxhash.xxh3_128()
    block = bytes(MiB)
    for _ in range(size // MiB):
        hasher.update(block)
    return OID_PREFIX + hasher.hexdigest()


# --- a huge object named as a manifest ----------------------------------------------------------------------

PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "vtool", *sys.argv[1:]], capture_output=True, text=True)
sys.stderr.write(proc.stderr)
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def test_a_huge_object_named_as_a_folder_is_refused_from_its_size_without_reading_it(project: Workdir) -> None:
    """The object is intact (its bytes hash to its name), so only its size can tell; reading it would cost 256 MiB."""
    oid = _zeros_oid(HUGE)
    path = project.object_path(oid)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(HUGE)  # sparse: costs no disk, but a read() would cost the memory
    project.write("data.vtool", f"version: 1\ntype: dir\npath: data\noid: {oid}\nsize: 0\nfiles: 0\n")
    for command in (("status",), ("checkout",)):
        proc = subprocess.run([sys.executable, "-c", PEAK_RSS, *command], cwd=project.root, capture_output=True,
                              text=True, timeout=TIMEOUT_S, check=False)
        code, peak_mib = map(int, proc.stdout.split())
        assert peak_mib < MAX_RSS_MIB, f"{command[0]} peaked at {peak_mib} MiB"
        assert code == 1, proc.stderr
        assert f"object {oid} is {HUGE} bytes, more than any manifest" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert path.stat().st_size == HUGE  # an intact object: refused, never quarantined


# --- the stat cache on a full disk ----------------------------------------------------------------------------

def _as_if_disk_full() -> None:
    """In the child: writes that grow a file past FILE_SIZE_LIMIT fail with EFBIG (SIGXFSZ ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def _changed_stamps(project: Workdir) -> None:
    """Give every file a new mtime (same bytes), so status must hash them and record new stat entries."""
    for path in (project.root / "data").iterdir():
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))


def test_status_on_a_full_disk_warns_once_and_reports_correctly(project: Workdir) -> None:
    project.write_tree("data", {f"f{i}.txt": f"{i}\n" for i in range(FILES)})
    project.add("data")
    _changed_stamps(project)
    project.write("data/f0.txt", "changed\n")
    proc = subprocess.run([sys.executable, "-m", "vtool", "status"], cwd=project.root, capture_output=True,
                          text=True, timeout=TIMEOUT_S, preexec_fn=_as_if_disk_full, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == ["data: modified (0 added, 1 modified, 0 deleted)", "    ~ f0.txt"]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "the stat cache under .vtool/state cannot be written" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr and "sqlite3" not in proc.stderr


def test_a_stat_cache_that_cannot_be_opened_is_skipped(project: Workdir) -> None:
    project.write_tree("data", {"a.txt": "a\n"})
    project.add("data")
    db = project.vtool_dir / "state" / "stat.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.mkdir()  # sqlite cannot open a folder; vtool must neither crash nor delete it
    for command in (("status", "--check"), ("checkout",), ("verify",)):
        result = project.run(*command)
        assert result.code == 0, result.err
        assert "warning: the stat cache under .vtool/state cannot be written" in result.err
    assert db.is_dir()


def test_every_error_is_one_line_even_when_its_text_has_newlines(project: Workdir,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise FormatError("first line\nsecond line", "hint line one\nhint line two")

    monkeypatch.setattr("vtool.cli.add.add", broken)
    result = project.run("add", "anything")
    assert result.code == 1
    assert result.err.splitlines() == ["error: first line second line", "  hint: hint line one hint line two"]


# --- folder totals ----------------------------------------------------------------------------------------------

def _entries(*sizes: int) -> list[Entry]:
    return [Entry(f"f{i}", manifest.KIND_FILE, hash_bytes(b"%d" % i), size, 1) for i, size in enumerate(sizes)]


def test_totals_are_checked_whichever_side_is_read_first() -> None:
    from vtool.manifest import TotalsCheck  # here, so the rest of this file also runs against older code

    child = _entries(3, 4)
    child_oid = manifest.build(child)[0]
    parent = [Entry("sub", manifest.KIND_DIR, child_oid, 7, 2)]
    honest = TotalsCheck()
    honest.claim(manifest.build(parent)[0], 7, 2, "data.vtool")
    honest.read(manifest.build(parent)[0], parent)
    honest.read(child_oid, child)  # parent first, then child: fine

    lying = [Entry("sub", manifest.KIND_DIR, child_oid, 7, 1)]
    for order in ("parent first", "child first"):
        check = TotalsCheck()
        with pytest.raises(FormatError, match="holds 1 file.s. and 7 bytes, but its manifest holds 2 file.s. and 7"):
            if order == "parent first":
                check.read(manifest.build(lying)[0], lying)
                check.read(child_oid, child)
            else:
                check.read(child_oid, child)
                check.read(manifest.build(lying)[0], lying)


def test_a_pointer_claiming_fewer_files_than_its_tree_is_refused_before_checkout_writes(project: Workdir) -> None:
    project.write_tree("data", {"a.txt": "a\n", "sub/b.txt": "b\n", "sub/c.txt": "c\n"})
    project.add("data")
    pointer = project.read("data.vtool")
    project.write("data.vtool", pointer.replace(b"files: 3", b"files: 2"))
    os.unlink(project.root / "data/a.txt")
    result = project.fails("checkout")
    assert "data.vtool says folder" in result.err and "holds 2 file(s)" in result.err
    assert not (project.root / "data/a.txt").exists()


# --- special files in a local-folder remote ------------------------------------------------------------------------

def _remote_with(tmp_path: Path, data: bytes) -> tuple[LocalRemote, str, Path]:
    oid = hash_bytes(data)
    path = tmp_path / oid[7:9] / oid[9:]
    path.parent.mkdir(parents=True)
    return LocalRemote(RemoteConfig("nas", str(tmp_path))), oid, path


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_a_local_remote_never_blocks_on_or_follows_a_special_file(tmp_path: Path, kind: str) -> None:
    remote, oid, path = _remote_with(tmp_path / "remote", b"object\n")
    target = tmp_path / "outside"
    target.write_bytes(b"object\n")  # even the right bytes are refused through a link
    os.mkfifo(path) if kind == "fifo" else os.symlink(target, path)
    assert remote.stat(object_key(oid)) is None
    assert list(remote.list()) == []
    outcome: list[BaseException | None] = []

    def get() -> None:
        try:
            remote.get(object_key(oid), open(os.devnull, "wb"))  # noqa: SIM115 - closed with the process
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=get, daemon=True)
    worker.start()
    worker.join(BLOCKED_S)
    if not outcome and kind == "fifo":  # blocked in open(): give the FIFO a writer so the thread ends
        os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))  # Linux: counts as a writer, never blocks
    assert outcome, "get() blocked"
    assert isinstance(outcome[0], CorruptObjectError), outcome
    assert ("a FIFO" if kind == "fifo" else "is a symlink") in str(outcome[0])


# --- the only good copy -----------------------------------------------------------------------------------------

def _rot(project: Workdir, data: bytes) -> Path:
    """Flip one bit of the cached object of data, keeping its size: only a hash can tell."""
    path = project.object_path(hash_bytes(data))
    path.chmod(0o644)
    rotten = bytearray(path.read_bytes())
    rotten[len(rotten) // 2] ^= 0x01
    path.write_bytes(bytes(rotten))
    return path


def test_a_rotten_cache_object_never_costs_the_only_good_copy_in_the_workspace(project: Workdir) -> None:
    # Over a MiB each, so they are loose objects (smaller ones live in packs) that a bit flip can reach.
    v2_changed, v2_only = b"version two of x\n" * 70_000, b"y exists only in v2\n" * 60_000
    project.write_tree("data", {"x.txt": "version one of x\n", "z.txt": "same in both\n"})
    project.add("data")
    project.commit("v1")
    project.git("tag", "v1")
    project.write_tree("data", {"x.txt": v2_changed, "y.txt": v2_only})
    project.add("data")
    project.commit("v2")
    for data in (v2_changed, v2_only):
        _rot(project, data)

    project.ok("checkout", "v1")  # replaces x.txt and deletes y.txt: their good bytes must be kept first
    assert project.read("data/x.txt") == b"version one of x\n"
    assert not project.path("data/y.txt").exists()
    project.ok("checkout", "main")
    assert (project.read("data/x.txt"), project.read("data/y.txt")) == (v2_changed, v2_only)
    assert project.ok("verify").code == 0
    quarantined = list((project.cache_dir / "quarantine").iterdir())
    assert len(quarantined) == 2  # the rotten objects, moved aside, never deleted
