"""A throwaway Dovecot IMAP server for the tests, the demo and the benchmarks.

``DevServer`` runs Dovecot 2.3 from its own configuration in a temporary
directory, on free loopback ports (plain IMAP with STARTTLS, and implicit TLS),
with plaintext-password users that can be added while it runs. ``stop()``,
leaving the ``with`` block, the interpreter exiting, or even this process being
killed stops every Dovecot process of the instance and removes the directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Self

from mailmover.devserver_conf import (
    HOST,
    SPECIAL_USE,
    CertTool,
    DevServerError,
    Layout,
    ServerOptions,
    find_program,
    mail_ids,
    make_certificates,
    render_config,
)

__all__ = [
    "HOST",
    "SPECIAL_USE",
    "Account",
    "CertTool",
    "DevServer",
    "DevServerError",
    "Layout",
    "ServerOptions",
]

# Letters of any script: a non-ASCII name also needs ``auth_username_chars =`` in extra_conf.
_USER_NAME = re.compile(r"[^\W_][\w.@+-]*\Z")
_PORT_ATTEMPTS = 3

# Runs Dovecot in the foreground and ties its life to our stdin pipe: should this
# Python process die without stopping it (even by SIGKILL), the pipe closes, the
# watcher stops Dovecot and the launcher removes the temporary directory ($2).
_LAUNCHER = r"""
exec 3<&0 </dev/null
"$0" -F -c "$1" 3<&- &
dovecot=$!
{ read -r _ <&3; : >"$2/stopping"; kill -TERM "$dovecot" 2>/dev/null; } &
watcher=$!
wait "$dovecot"
status=$?
kill "$watcher" 2>/dev/null
if [ -e "$2/stopping" ]; then rm -rf -- "$2"; fi
exit "$status"
"""


class Account(NamedTuple):
    """A user of a DevServer."""

    name: str
    password: str


class DevServer:
    """One Dovecot instance in a temporary directory, listening on 127.0.0.1.

    ``users`` maps names to plaintext passwords. ``layout`` picks the Maildir
    layout: ``"maildir++"`` (separator ``.``) or ``"fs"`` (separator ``/``).
    ``separator`` and ``prefix`` override the INBOX namespace's hierarchy
    separator and prefix (``"INBOX."`` as on Courier). ``max_message_size``
    makes APPENDs of more bytes fail with ``[LIMIT]``. ``compress`` offers
    COMPRESS=DEFLATE. With ``special_use`` the mailboxes named in
    ``SPECIAL_USE`` carry their attribute once created (none exists at
    start). ``extra_conf`` is appended to dovecot.conf verbatim.
    ``cert_tool`` chooses how the TLS certificates are made ("auto": trustme
    when importable, else the openssl command).
    """

    host = HOST

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        layout: Layout = "maildir++",
        separator: str | None = None,
        prefix: str = "",
        max_message_size: int | None = None,
        compress: bool = True,
        special_use: bool = True,
        extra_conf: str = "",
        quota: bool = False,
        cert_tool: CertTool = "auto",
        startup_timeout: float = 20.0,
    ) -> None:
        self.options = ServerOptions(
            layout=layout,
            separator=separator,
            prefix=prefix,
            max_message_size=max_message_size,
            compress=compress,
            special_use=special_use,
            extra_conf=extra_conf,
            quota=quota,
        )
        self.cert_tool: CertTool = cert_tool
        self.startup_timeout = startup_timeout
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}
        for name, password in (users or {}).items():
            _check_account(name, password)
            self._users[name] = password
        self._root: Path | None = None
        self._ports: tuple[int, int] | None = None
        self._finalizer: weakref.finalize[..., DevServer] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start Dovecot and wait until it greets; return self."""
        if self.running:
            raise DevServerError("this DevServer is already running")
        dovecot = find_program("dovecot")
        root = Path(tempfile.mkdtemp(prefix="mailmover-dovecot-"))
        # Dovecot's mail and auth processes run as another user and must reach into it.
        root.chmod(0o755)
        self._root = root
        try:
            self._prepare(root)
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                self._ports = _free_ports()
                for log in ("console.log", "dovecot.log"):
                    (root / log).unlink(missing_ok=True)
                (root / "dovecot.conf").write_text(render_config(self.options, root, self._ports))
                proc = self._launch(dovecot, root)
                self._finalizer = weakref.finalize(self, _shutdown, proc, root)
                try:
                    self._wait_ready(proc)
                except DevServerError as exc:
                    self._finalizer.detach()
                    self._finalizer = None
                    _shutdown(proc, root, remove=False)
                    # Another process may have taken a port between our probe and Dovecot's bind.
                    if "Address already in use" not in str(exc) or attempt == _PORT_ATTEMPTS:
                        raise
                else:
                    return self
            raise AssertionError("unreachable")
        except BaseException:
            self.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise

    def stop(self) -> None:
        """Stop every Dovecot process of this instance and remove its directory."""
        if self._finalizer is not None:
            self._finalizer()
        self._finalizer = None
        self._ports = None

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
        state = f"port={self._ports[0]}" if self._ports else "stopped"
        return f"<DevServer {self.options.layout} {state}>"

    # -- where to connect --------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether start() succeeded and stop() has not been called since."""
        return self._finalizer is not None and self._finalizer.alive

    @property
    def port(self) -> int:
        """The plain IMAP port (STARTTLS offered)."""
        return self._running_ports()[0]

    @property
    def tls_port(self) -> int:
        """The implicit-TLS IMAP port."""
        return self._running_ports()[1]

    @property
    def root(self) -> Path:
        """The temporary directory holding configuration, certificates, logs and mail."""
        if self._root is None or not self.running:
            raise DevServerError("the DevServer is not running")
        return self._root

    @property
    def ca_file(self) -> Path:
        """PEM file of the CA that signed the server certificate (127.0.0.1, localhost)."""
        return self.root / "ca.pem"

    @property
    def log_path(self) -> Path:
        """Dovecot's log file."""
        return self.root / "dovecot.log"

    @property
    def conf_path(self) -> Path:
        """This instance's dovecot.conf."""
        return self.root / "dovecot.conf"

    @property
    def separator(self) -> str:
        """The INBOX namespace's hierarchy separator."""
        return self.options.hierarchy_separator

    def maildir(self, user: str) -> Path:
        """The Maildir root of ``user`` (created by Dovecot at the first login)."""
        _check_name(user)
        return self.root / "mail" / user

    # -- users -------------------------------------------------------------------------

    @property
    def users(self) -> dict[str, str]:
        """A copy of the user name → password table."""
        with self._lock:
            return dict(self._users)

    def add_user(self, name: str, password: str) -> Account:
        """Add a user; a running Dovecot accepts it from the next login on."""
        _check_account(name, password)
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            self._users[name] = password
            if self.running:
                _write_passwd(self.root, name, password)
        return Account(name, password)

    def set_quota(self, name: str, kilobytes: int | None) -> None:
        """Limit what ``name`` may store (``quota=True`` servers); None lifts the limit.

        Dovecot rereads a user's passwd file within a second; sessions opened
        after that see the new limit.
        """
        with self._lock:
            password = self._users[name]
        extra = f"userdb_quota_rule=*:storage={kilobytes}K" if kilobytes is not None else ""
        _write_passwd(self.root, name, password, extra)
        time.sleep(1.1)

    # -- inspection --------------------------------------------------------------------

    def doveadm(self, *args: str, stdin: bytes | None = None, timeout: float = 30.0) -> bytes:
        """Run ``doveadm`` against this instance and return its standard output."""
        command = [find_program("doveadm"), "-c", str(self.conf_path), *args]
        what = " ".join(args[:1])
        try:
            result = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DevServerError(f"doveadm {what} timed out") from exc
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            raise DevServerError(f"doveadm {what} failed ({result.returncode}): {stderr}")
        return result.stdout

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of Dovecot's console output and log."""
        text: list[str] = []
        if self._root is not None:
            for name in ("console.log", "dovecot.log"):
                with contextlib.suppress(OSError):
                    text += (self._root / name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    # -- internals ---------------------------------------------------------------------

    def _running_ports(self) -> tuple[int, int]:
        if self._ports is None or not self.running:
            raise DevServerError("the DevServer is not running")
        return self._ports

    def _prepare(self, root: Path) -> None:
        uid, gid = mail_ids()
        (root / "mail").mkdir()
        os.chown(root / "mail", uid, gid)
        (root / "passwd.d").mkdir(mode=0o750)
        os.chown(root / "passwd.d", -1, gid)
        make_certificates(root, self.cert_tool)
        with self._lock:
            for name, password in self._users.items():
                _write_passwd(root, name, password)

    def _launch(self, dovecot: str, root: Path) -> subprocess.Popen[bytes]:
        with (root / "console.log").open("ab") as console:
            return subprocess.Popen(
                ["/bin/sh", "-c", _LAUNCHER, dovecot, str(root / "dovecot.conf"), str(root)],
                stdin=subprocess.PIPE,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        plain, tls = self._running_ports()
        while True:
            if _has_exited(proc.pid):
                raise DevServerError(f"Dovecot exited while starting:\n{self.log_tail()}")
            if greets(plain) and _accepts(tls):
                return
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"Dovecot did not greet on {HOST}:{plain} within "
                    f"{self.startup_timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)


def _check_name(name: str) -> None:
    if not _USER_NAME.match(name):
        raise ValueError(f"unusable user name {name!r}")


def _check_account(name: str, password: str) -> None:
    _check_name(name)
    if not password or any(c in password for c in ":\r\n\0"):
        raise ValueError("a password must be non-empty, without ':' or line breaks")


def _write_passwd(root: Path, name: str, password: str, extra: str = "") -> None:
    staged = root / "passwd.d" / f".{name}"
    fields = f"::::::{extra}" if extra else ""
    staged.write_text(f"{name}:{{PLAIN}}{password}{fields}\n")
    staged.chmod(0o640)
    os.chown(staged, -1, mail_ids()[1])
    staged.replace(root / "passwd.d" / name)


def _free_ports() -> tuple[int, int]:
    with socket.socket() as first, socket.socket() as second:
        first.bind((HOST, 0))
        second.bind((HOST, 0))
        return first.getsockname()[1], second.getsockname()[1]


def greets(port: int, ca_file: Path | None = None) -> bool:
    """Whether an IMAP server on ``port`` sends an ``* OK`` greeting (through implicit
    TLS, verified with ``ca_file``, when it is given)."""
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((HOST, port), timeout=2))
            if ca_file is not None:
                context = ssl.create_default_context(cafile=str(ca_file))
                sock = stack.enter_context(context.wrap_socket(sock, server_hostname=HOST))
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"* OK")
    except OSError:
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def _has_exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, leaving it unreaped (its group id stays ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _live_members(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is not dead yet (zombies, holding no ports, are)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            state, _ppid, group = stat.read_text().rpartition(")")[2].split()[:3]
            if int(group) == pgid and state not in "ZX":
                return True
    return False


def _shutdown(proc: subprocess.Popen[bytes], root: Path, *, remove: bool = True) -> None:
    # The launcher is not reaped yet, so its process group id cannot have been reused.
    # Nothing of a throwaway instance is worth a graceful (one second) shutdown.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while _live_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    if remove:
        shutil.rmtree(root, ignore_errors=True)
