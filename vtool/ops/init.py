"""`vtool init`: set up `.vtool/` in a git repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vtool import config as cfg
from vtool.fsutil import atomic_write, check_real_folder
from vtool.gitrepo import find_root

VTOOL_GITIGNORE = "/cache/\n/state/\n/tmp/\n/lock\n/config.local.yaml\n"
CONFIG_HEADER = b"# vtool settings, tracked in git. Secrets belong in config.local.yaml (ignored).\n{}\n"


@dataclass(frozen=True)
class InitResult:
    """Where the project lives and whether this call created it."""

    root: Path
    created: bool


def init(start: Path | None = None) -> InitResult:
    """Create `.vtool/config.yaml` and `.vtool/.gitignore`; leave an existing setup alone."""
    root = find_root(start or Path.cwd())
    vdir = root / cfg.VTOOL_DIR
    check_real_folder(root, vdir / cfg.CONFIG_NAME)
    created = not vdir.is_dir()
    vdir.mkdir(exist_ok=True)
    config_path, _ = cfg.config_paths(root)
    if not config_path.exists():
        atomic_write(config_path, CONFIG_HEADER)
    ignore = vdir / ".gitignore"
    if not ignore.exists():
        atomic_write(ignore, VTOOL_GITIGNORE.encode())
    return InitResult(root, created)
