"""A second, private RabbitMQ node on its own port, which a test may stop and start at will."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    def __init__(self) -> None:
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"cgttest{os.getpid()}x{self.port}@localhost"
        self.home = Path(tempfile.mkdtemp(prefix="cgt-rabbit-"))
        (self.home / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.home / "enabled_plugins").write_text("[].\n")
        for sub in ("mnesia", "log"):
            (self.home / sub).mkdir()
        shutil.chown(self.home, "rabbitmq", "rabbitmq")
        for path in self.home.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_PID_FILE": str(self.home / "pid"),
        }

    def port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self, timeout: float = 90.0) -> None:
        with open(self.home / "stdout.txt", "ab") as log:
            self._process = subprocess.Popen(
                ["rabbitmq-server"], env=self._env(), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port_open():
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.2)
        tail = (self.home / "stdout.txt").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"private RabbitMQ did not start on {self.port}:\n{tail}")

    def stop(self) -> None:
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "stop"], env=self._env(), capture_output=True, timeout=60
        )
        if self._process is not None:
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None
        deadline = time.monotonic() + 30
        while self.port_open() and time.monotonic() < deadline:
            time.sleep(0.2)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
