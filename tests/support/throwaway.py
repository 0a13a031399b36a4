"""A server process tree in namespaces of its own, for servers other than Dovecot.

``Namespaced`` runs a shell script as PID 1 of a new PID and mount namespace
(``unshare -m -p -f``), so that bind mounts it makes (Courier's /etc/courier and
/run/courier, a private /dev/log) are seen by that server alone, and killing the
namespace's first process kills every process of it, whatever they do to their
sessions or process groups. Like ``mailmover.devserver``, the instance is tied to
a pipe from this process: should the test process die, even by SIGKILL, the
server dies with it. ``SyslogSink`` collects what a server sends to /dev/log
(Cyrus logs nowhere else).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"

# $0: the inner script. The watcher kills the namespace when our stdin pipe closes
# (this Python process ended without stopping the server); the launcher then removes
# the instance's directory ($ROOT), whose private mounts died with the namespace.
_LAUNCHER = r"""
exec 3<&0 </dev/null
unshare --mount --pid --fork --kill-child --propagation private /bin/sh "$0" 3<&- &
server=$!
{ read -r _ <&3; : >"$ROOT/stopping"; kill -KILL "$server" 2>/dev/null; } &
watcher=$!
wait "$server"
status=$?
kill "$watcher" 2>/dev/null
if [ -e "$ROOT/stopping" ]; then rm -rf --one-file-system -- "$ROOT"; fi
exit "$status"
"""

# Lines an inner script can start with: /dev/log becomes a symlink to "$LOG_SOCKET"
# in a private /dev that otherwise links to the real device nodes.
PRIVATE_DEV_LOG = r"""
hostdev="$ROOT/hostdev"
mkdir -p "$hostdev"
mount --bind /dev "$hostdev"
mount -o remount,bind,ro "$hostdev"
mount -t tmpfs -o mode=0755 mailmover-dev /dev
for entry in "$hostdev"/* "$hostdev"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    ln -s "$entry" "/dev/${entry##*/}"
done
ln -sf "$LOG_SOCKET" /dev/log
"""


class ServerError(RuntimeError):
    """A throwaway server could not be started or used."""


#: How often a server is started on another port when its port was taken meanwhile.
PORT_ATTEMPTS = 3
PORT_TAKEN = "Address already in use"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def program(path: str) -> str:
    """``path`` when it is an executable, else ServerError naming the install step."""
    if not os.access(path, os.X_OK):
        raise ServerError(f"{path} is missing: run `make sysdeps` (scripts/install-sysdeps.sh)")
    return path


class SyslogSink:
    """A datagram socket standing in for /dev/log; every message is appended to a file."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path, self.log_path = socket_path, log_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(socket_path))
        socket_path.chmod(0o666)
        self._thread = threading.Thread(target=self._run, name="syslog-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.log_path.open("ab", buffering=0) as out:
            while True:
                try:
                    data = self._sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                out.write(data.rstrip(b"\0\n") + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2)


class Namespaced:
    """One server: ``script`` run by /bin/sh as PID 1 of new PID and mount namespaces.

    The script gets ``ROOT`` (the instance's directory) and ``extra_env`` in its
    environment and must keep running for as long as the server lives: it starts
    the server in the background and waits for it, never ``exec``s it, because a
    server that changes its user id loses the death signal (``--kill-child``) that
    the shell, staying PID 1, keeps. ``start`` returns when ``ready()`` holds.
    """

    def __init__(self, name: str, root: Path, script: str, extra_env: dict[str, str]) -> None:
        self.name, self.root = name, root
        self._script = script
        self._env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ROOT": str(root), **extra_env}
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., Namespaced] | None = None

    @property
    def console_path(self) -> Path:
        return self.root / "console.log"

    def start(
        self,
        ready: Callable[[], bool],
        timeout: float,
        failed: Callable[[], str | None] = lambda: None,
    ) -> None:
        """Launch the script and wait until ``ready()``; ServerError with the console when
        it exits first, ``failed()`` names a failure, or ``timeout`` passes."""
        (self.root / "inner.sh").write_text("set -eu\n" + self._script)
        with self.console_path.open("wb") as console:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", _LAUNCHER, str(self.root / "inner.sh")],
                stdin=subprocess.PIPE,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=self._env,
                start_new_session=True,
            )
        self._finalizer = weakref.finalize(self, _kill, self._proc)
        deadline = time.monotonic() + timeout
        while not ready():
            problem = failed()
            if problem is None and self._proc.poll() is not None:
                problem = "exited while starting"
            if problem is None and time.monotonic() > deadline:
                problem = f"was not ready within {timeout:g} s"
            if problem is not None:
                self.stop()
                raise ServerError(f"{self.name} {problem}:\n{self.console_tail()}")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self._finalizer is not None and self._finalizer.alive

    def stop(self) -> None:
        """Kill every process of the namespace (idempotent)."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None

    def console_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.console_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


class ThrowawayServer:
    """What a throwaway server started in its own namespaces has in common: where to
    connect while it runs, and a context manager that stops it."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._port: int | None = None
        self._tls_port: int | None = None
        self._server: Namespaced | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process of this instance and remove its directory."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self._port is not None:
                wait_closed(self._port)
        self._stopped()
        if self._root is not None:
            remove_tree(self._root)
            self._root = None
        self._port = self._tls_port = None

    def _stopped(self) -> None:
        """What a server keeps beside its processes, let go once they have ended."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {f'port={self._port}' if self.running else 'stopped'}>"

    def _missing(self, what: str = "") -> ServerError:
        return ServerError(f"the {type(self).__name__} is not running{what}")

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def port(self) -> int:
        """The plain IMAP port (no TLS)."""
        if self._port is None or not self.running:
            raise self._missing()
        return self._port

    @property
    def tls_port(self) -> int:
        """The implicit-TLS IMAP port (``tls=True``; STARTTLS is offered on ``port`` then)."""
        if self._tls_port is None or not self.running:
            raise self._missing(" with TLS")
        return self._tls_port

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate (``tls=True``)."""
        return self.root / "ca.pem"

    @property
    def root(self) -> Path:
        if self._root is None:
            raise self._missing()
        return self._root


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # SIGKILL to unshare kills the namespace's PID 1 (--kill-child), and with it the
    # whole namespace; the launcher and its watcher share our process group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def wait_closed(port: int, timeout: float = 5.0) -> None:
    """Wait until nothing accepts connections on ``port`` (a killed server's last step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.01)


def remove_tree(root: Path) -> None:
    """Remove an instance's directory, unless a mount of its namespace is still seen there."""
    if any(path.is_mount() for path in root.glob("*")):
        raise ServerError(f"{root} still holds a mount point; not removed")
    shutil.rmtree(root, ignore_errors=True)


def run_quietly(argv: Sequence[str], *, stdin: bytes = b"", what: str) -> None:
    """Run a setup tool; ServerError with its output when it fails."""
    result = subprocess.run(list(argv), input=stdin, capture_output=True, timeout=60)
    if result.returncode != 0:
        out = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise ServerError(f"{what} failed ({result.returncode}): {out}")
