"""What a hostile body costs a real `serve` process: a chunked POST far over the limit (256 MiB by
default) to the unauthenticated token endpoint, over a real socket. Recorded: the answer, how much
the client could send before the server closed, the time it took, and the server's peak resident
memory (VmHWM), beside the same server's peak after an ordinary small token request (the peer,
in the same run). `--tree DIR` measures another source tree's `serve` the same way in the same
run (e.g. an older revision unpacked with `git archive REV | tar -x -C DIR`).

    .venv/bin/python bench/http_body_limit.py
    .venv/bin/python bench/http_body_limit.py --mib 256 --tree /tmp/before --json

Needs the local RabbitMQ (a private vhost is created and removed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import private_vhost

CHUNK = 65_536
# Runs `serve` from the tree given first on the command line, past the editable install's finder.
LAUNCH = (
    "import sys; tree = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in getattr(f, '__module__', '')]; "
    "sys.path.insert(0, tree); sys.argv[1:] = ['serve']; "
    "from gateway.entrypoints.cli import main; main()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def start(tree: Path, amqp_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "CGT_ENV": "development",
        "CGT_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/gw.db",
        "CGT_AMQP_URL": amqp_url,
        "CGT_HTTP_PORT": str(port),
        "CGT_MLLP_PORT": str(free_port()),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(tree)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"serve from {tree} did not start")


def post(port: int, total: int) -> dict[str, Any]:
    """A chunked form POST of `total` bytes to the token endpoint; what happened."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        b"POST /fhir/r4/auth/token HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = bytearray()
    ended = threading.Event()

    def read() -> None:
        try:
            while data := sock.recv(65_536):
                answer.extend(data)
        except OSError:
            pass
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    piece = b"%x\r\n" % CHUNK + b"a" * CHUNK + b"\r\n"
    sent, started = 0, time.perf_counter()
    try:
        while sent < total and not ended.is_set():
            size = min(CHUNK, total - sent)
            sock.sendall(piece if size == CHUNK else b"%x\r\n" % size + b"a" * size + b"\r\n")
            sent += size
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    ended.wait(60)
    sock.close()
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
    return {
        "status": status,
        "sent_mib": round(sent / 2**20, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def measure(label: str, tree: Path, amqp_url: str, total: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        process, port = start(tree, amqp_url, Path(workdir))
        try:
            rows.append({"serve": label, "request": "1 KiB", **post(port, 1024)})
            rows[-1]["peak_mib"] = peak_kib(process.pid) // 1024
            result = post(port, total)
            time.sleep(0.5)
            rows.append({"serve": label, "request": f"{total // 2**20} MiB", **result})
            rows[-1]["peak_mib"] = peak_kib(process.pid) // 1024
        finally:
            process.terminate()
            process.wait(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--tree", type=Path, help="another source tree to measure beside this one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    with private_vhost() as amqp_url:
        rows = measure("this tree", here, amqp_url, args.mib * 2**20)
        if args.tree:
            rows += measure(str(args.tree), args.tree, amqp_url, args.mib * 2**20)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| serve | request | answer | sent before the answer | seconds | server peak RSS |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['serve']} | {r['request']} | {r['status']} | {r['sent_mib']} MiB | {r['seconds']} "
            f"| {r['peak_mib']} MiB |"
        )


if __name__ == "__main__":
    main()
