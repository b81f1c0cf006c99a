"""Start and stop the project's local S3 server (scripts/s3-server) for the whole benchmark."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench_lib.proc import tail_file

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.1
ENDPOINT_PREFIX = "endpoint="
SERVER_ENV_OVERRIDE = "BENCH_S3_SERVER"


class ServerError(RuntimeError):
    """The S3 server did not start; str() carries its log tail."""


def parse_env_file(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines (optionally 'export ', optionally quoted) from an env file."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        env[key.strip()] = value.strip().strip("'\"")
    return env


@dataclass
class S3Server:
    """The running server: its endpoint and the AWS_* variables clients need."""

    launcher: Path
    data_dir: Path
    env_file: Path
    log_file: Path
    endpoint: str = ""
    aws_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the server in its own session and wait for its endpoint= line."""
        launcher = Path(os.environ.get(SERVER_ENV_OVERRIDE, self.launcher))
        if not launcher.exists():
            raise ServerError(f"{launcher} not found (the local S3 server launcher)")
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.env_file.unlink(missing_ok=True)
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen(
                [str(launcher), "start", "--dir", str(self.data_dir), "--env-file", str(self.env_file)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise ServerError(f"s3-server exited with {code}:\n{tail_file(self.log_file)}")
            endpoint = self._endpoint_line()
            if endpoint and self.env_file.exists():
                self.endpoint = endpoint
                self.aws_env = parse_env_file(self.env_file)
                return
            time.sleep(POLL_S)
        self.stop()
        tail = tail_file(self.log_file)
        raise ServerError(f"s3-server printed no endpoint in {START_TIMEOUT_S:.0f}s:\n{tail}")

    def _endpoint_line(self) -> str:
        """Return the endpoint the server printed, or '' while it has not yet."""
        for line in self.log_file.read_text(errors="replace").splitlines():
            if line.startswith(ENDPOINT_PREFIX):
                return line[len(ENDPOINT_PREFIX):].strip()
        return ""

    def stop(self) -> None:
        """SIGTERM the launcher, then SIGKILL its process group if it is slow to exit."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # The launcher may leave its server child behind; the group holds both.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> S3Server:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the server whatever happened."""
        self.stop()
