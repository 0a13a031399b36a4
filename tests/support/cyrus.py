"""A throwaway Cyrus IMAP 3 server for the tests, on a free 127.0.0.1 port.

``CyrusServer`` runs Cyrus's ``master`` with its own imapd.conf and cyrus.conf in
a temporary directory, ``imapd`` taken from the cyrus-imapd package unpacked by
scripts/install-sysdeps.sh (it conflicts with dovecot-imapd, so it is not
installed). Users are SASL users in a private sasldb (``saslpasswd2``); their
INBOX is created at their first login. Cyrus logs only through syslog: a private
/dev/log in the server's mount namespace sends its lines to ``syslog_path``.

By default the configuration is upstream Cyrus 3's: ``altnamespace`` (personal
folders at the top level, no prefix) and ``unixhierarchysep`` (``/`` as hierarchy
separator, so dots are allowed in names). ``altnamespace=False,
unixhierarchysep=False`` gives Debian's packaged setup (``INBOX.`` as prefix,
``.`` as separator). ``munge8bit: no`` keeps 8-bit header bytes as they came.
Cyrus refuses ``"`` in a mailbox name with a bare ``NO Invalid mailbox name``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from mailmover.devserver import Account, greets
from mailmover.devserver_conf import make_certificates

from .throwaway import (
    HOST,
    PORT_ATTEMPTS,
    PORT_TAKEN,
    PRIVATE_DEV_LOG,
    Namespaced,
    ServerError,
    SyslogSink,
    ThrowawayServer,
    free_port,
    program,
    run_quietly,
)

SERVERS_DIR = Path(os.environ.get("MAILMOVER_SERVERS_DIR", "/opt/mailmover-servers"))
IMAPD = SERVERS_DIR / "cyrus-imapd/usr/lib/cyrus/bin/imapd"
MASTER = "/usr/lib/cyrus/bin/master"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
#: the SASL realm and server name of every instance
SERVERNAME = "mailmover-cyrus"

_DIRS = ("config/db", "config/socket", "config/proc", "config/log", "spool", "sieve")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")

_SCRIPT = (
    PRIVATE_DEV_LOG
    + r"""
"$MASTER" -D -C "$ROOT/imapd.conf" -M "$ROOT/cyrus.conf" -p "$ROOT/run/master.pid" &
wait $!
"""
)


class CyrusServer(ThrowawayServer):
    """One Cyrus IMAP instance in a temporary directory, listening on 127.0.0.1 (plain IMAP).

    ``users`` maps names to passwords; ``admin`` is an administrator account
    (random password) made at start. With ``tls`` it also listens with implicit TLS
    on ``tls_port`` and offers STARTTLS, with a certificate for 127.0.0.1 signed by
    ``ca_file``. ``extra_conf`` holds imapd.conf lines
    that replace or add to the ones this class writes.
    """

    host = HOST

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        altnamespace: bool = True,
        unixhierarchysep: bool = True,
        extra_conf: str = "",
        tls: bool = False,
        startup_timeout: float = 20.0,
    ) -> None:
        self.altnamespace = altnamespace
        self.tls = tls
        self.unixhierarchysep = unixhierarchysep
        self.extra_conf = extra_conf
        self.startup_timeout = startup_timeout
        self.admin = Account("mailmover-admin", secrets.token_urlsafe(12))
        self._users = dict(users or {})
        for name, password in self._users.items():
            _check_account(name, password)
        self._lock = threading.Lock()
        super().__init__()
        self._sink: SyslogSink | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start Cyrus and wait until it greets; return self."""
        if self._server is not None:
            raise ServerError("this CyrusServer is already running")
        imapd, master = program(str(IMAPD)), program(MASTER)
        program(SASLPASSWD2)
        root = Path(tempfile.mkdtemp(prefix="mailmover-cyrus-"))
        root.chmod(0o755)
        self._root = root
        try:
            for sub in (*_DIRS, "run/proc", "run/lock", "run/socket"):
                (root / sub).mkdir(parents=True)
            for name, password in [self.admin, *self._users.items()]:
                self._set_password(name, password)
            if self.tls:
                make_certificates(root, "auto")
            self._sink = SyslogSink(root / "log.sock", root / "syslog.log")
            for attempt in range(1, PORT_ATTEMPTS + 1):
                try:
                    self._launch(root, imapd, master)
                    break
                except ServerError as exc:
                    if PORT_TAKEN not in str(exc) or attempt == PORT_ATTEMPTS:
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def _stopped(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    @property
    def separator(self) -> str:
        return "/" if self.unixhierarchysep else "."

    @property
    def prefix(self) -> str:
        """The personal namespace's prefix: empty with altnamespace, else ``INBOX`` + separator."""
        return "" if self.altnamespace else "INBOX" + self.separator

    @property
    def syslog_path(self) -> Path:
        """What Cyrus sent to syslog."""
        return self.root / "syslog.log"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Cyrus's syslog and console output."""
        text = self._syslog_tail(lines).splitlines()
        if self._server is not None:
            text += self._server.console_tail(lines).splitlines()
        return "\n".join(text[-lines:])

    def _syslog_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError, ServerError):
            return "\n".join(self.syslog_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    # -- users -------------------------------------------------------------------------

    @property
    def users(self) -> dict[str, str]:
        with self._lock:
            return dict(self._users)

    def add_user(self, name: str, password: str) -> Account:
        """Add a user; a running Cyrus accepts it from the next login on."""
        _check_account(name, password)
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            self._users[name] = password
            if self._root is not None:
                self._set_password(name, password)
        return Account(name, password)

    # -- internals ---------------------------------------------------------------------

    def _launch(self, root: Path, imapd: str, master: str) -> None:
        """Start master on a free port; ServerError with Cyrus's syslog lines else."""
        port = self._port = free_port()
        tls_port = self._tls_port = free_port() if self.tls else None
        (root / "imapd.conf").write_text(self._imapd_conf(root))
        (root / "cyrus.conf").write_text(_cyrus_conf(imapd, root, port, tls_port))
        cyrus = pwd.getpwnam("cyrus")
        for path in [root, *root.rglob("*")]:
            os.chown(path, cyrus.pw_uid, cyrus.pw_gid)
        env = {"MASTER": master, "LOG_SOCKET": str(root / "log.sock")}
        self._server = Namespaced("Cyrus", root, _SCRIPT, env)
        ours = f"mailmover-cyrus-{port}/"

        def bind_failed() -> str | None:
            lines = self._syslog_tail(100).splitlines()
            taken = any(ours in line and PORT_TAKEN in line for line in lines)
            return f"could not listen on {HOST}: {PORT_TAKEN}" if taken else None

        def ready() -> bool:
            return greets(port) and (tls_port is None or greets(tls_port, root / "ca.pem"))

        try:
            self._server.start(ready, self.startup_timeout, bind_failed)
        except ServerError as exc:
            self._server = None
            raise ServerError(f"{exc}\nsyslog:\n{self._syslog_tail()}") from None

    def _set_password(self, name: str, password: str) -> None:
        sasldb = self.root / "sasldb2"
        run_quietly(
            [SASLPASSWD2, "-p", "-c", "-f", str(sasldb), "-u", SERVERNAME, name],
            stdin=password.encode() + b"\n",
            what=f"saslpasswd2 for {name}",
        )
        cyrus = pwd.getpwnam("cyrus")
        os.chown(sasldb, cyrus.pw_uid, cyrus.pw_gid)

    def _imapd_conf(self, root: Path) -> str:
        yes_no = {True: "yes", False: "no"}
        base = (
            f"configdirectory: {root}/config\n"
            f"partition-default: {root}/spool\n"
            "defaultpartition: default\n"
            f"sievedir: {root}/sieve\n"
            f"proc_path: {root}/run/proc\n"
            f"mboxname_lockpath: {root}/run/lock\n"
            f"lmtpsocket: {root}/run/socket/lmtp\n"
            f"idlesocket: {root}/run/socket/idle\n"
            f"notifysocket: {root}/run/socket/notify\n"
            f"servername: {SERVERNAME}\n"
            f"syslog_prefix: mailmover-cyrus-{self._port}\n"
            f"admins: {self.admin.name}\n"
            "sasl_pwcheck_method: auxprop\n"
            "sasl_auxprop_plugin: sasldb\n"
            f"sasl_sasldb_path: {root}/sasldb2\n"
            "sasl_mech_list: PLAIN LOGIN\n"
            "allowplaintext: yes\n"
            f"altnamespace: {yes_no[self.altnamespace]}\n"
            f"unixhierarchysep: {yes_no[self.unixhierarchysep]}\n"
            "munge8bit: no\n"
            "autocreate_quota: 0\n"
            "umask: 077\n"
        )
        if self.tls:
            base += f"tls_server_cert: {root}/server.pem\ntls_server_key: {root}/server.key\n"
        return _merge_conf(base, self.extra_conf)


def _merge_conf(base: str, extra: str) -> str:
    """``base`` with the options set in ``extra`` replaced by ``extra``'s lines."""
    overridden = {line.split(":", 1)[0].strip() for line in extra.splitlines() if ":" in line}
    kept = [line for line in base.splitlines() if line.split(":", 1)[0] not in overridden]
    return "\n".join(kept) + "\n" + extra


def _cyrus_conf(imapd: str, root: Path, port: int, tls_port: int | None) -> str:
    imaps = ""
    if tls_port is not None:
        imaps = f'  imaps cmd="{imapd} -s -C {root}/imapd.conf" listen="{HOST}:{tls_port}"\n'
    return (
        "START {\n}\n"
        "SERVICES {\n"
        f'  imap cmd="{imapd} -C {root}/imapd.conf" listen="{HOST}:{port}" prefork=1\n'
        + imaps
        + "}\n"
        "EVENTS {\n}\n"
        "DAEMON {\n}\n"
    )


def _check_account(name: str, password: str) -> None:
    if not _USER_NAME.match(name):
        raise ValueError(f"unusable user name {name!r}")
    if not password or any(c in password for c in "\r\n\0"):
        raise ValueError("a password must be non-empty, without line breaks")


def version() -> str:
    """The Cyrus version of the unpacked imapd (for reports)."""
    out = subprocess.run([str(IMAPD), "-V"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip()
