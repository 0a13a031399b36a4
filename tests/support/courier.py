"""A throwaway Courier IMAP server for the tests, on a free 127.0.0.1 port.

``CourierServer`` runs Courier's ``authdaemond`` (with the userdb module) and
``couriertcpd`` → ``imaplogin`` → ``imapd`` in a mount namespace of their own,
where the instance's directories are bind-mounted on /etc/courier and
/run/courier, the paths compiled into Courier's programs; the system's are never
touched. ``imapd`` comes from the courier-imap package unpacked by
scripts/install-sysdeps.sh (it conflicts with dovecot-imapd). Each user has a
Maildir under the instance's directory; passwords are stored as SHA-512.

Courier has one personal namespace, prefix ``INBOX.`` and separator ``.``: every
folder is a child of INBOX, and ``.`` and ``/`` cannot be in a folder's name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import re
import shutil
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
    Namespaced,
    ServerError,
    ThrowawayServer,
    free_port,
    program,
    run_quietly,
)

SERVERS_DIR = Path(os.environ.get("MAILMOVER_SERVERS_DIR", "/opt/mailmover-servers"))
IMAPD = SERVERS_DIR / "courier-imap/usr/bin/imapd"
IMAPLOGIN = SERVERS_DIR / "courier-imap/usr/lib/courier/courier/imaplogin"
AUTHDAEMOND = "/usr/lib/courier/courier-authlib/authdaemond"
COURIERTCPD = "/usr/sbin/couriertcpd"
MAKEUSERDB = "/usr/sbin/makeuserdb"
COURIERTLS = "/usr/bin/couriertls"
#: made by courier-base's installation; copied, as /etc/courier is hidden by the mount
DHPARAMS = "/etc/courier/dhparams.pem"

PREFIX = "INBOX."
SEPARATOR = "."

_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")

_SCRIPT = r"""
mount --bind "$ROOT/etc" /etc/courier
mount --bind "$ROOT/run" /run/courier
"$AUTHDAEMOND" &
if [ -n "$TLS_PORT" ]; then
    IMAP_TLS=1 "$COURIERTCPD" -address=127.0.0.1 -maxprocs=40 -maxperip="$MAXPERIP" \
        -nodnslookup -noidentlookup "$TLS_PORT" \
        "$COURIERTLS" -server -tcpd "$IMAPLOGIN" "$IMAPD" Maildir &
fi
"$COURIERTCPD" -address=127.0.0.1 -maxprocs=40 -maxperip="$MAXPERIP" \
    -nodnslookup -noidentlookup "$PORT" "$IMAPLOGIN" "$IMAPD" Maildir &
wait $!
"""

# What Debian's /etc/courier/imapd sets (the programs read it from the environment).
_IMAPD_ENV = {
    "IMAP_CAPABILITY": (
        "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT "
        "THREAD=REFERENCES SORT QUOTA IDLE"
    ),
    "IMAP_KEYWORDS": "1",
    "IMAP_ACL": "1",
    "IMAP_PROXY": "0",
    "IMAP_IDLE_TIMEOUT": "60",
    "IMAP_MAILBOX_SANITY_CHECK": "1",
    "IMAP_DISABLETHREADSORT": "0",
    "IMAP_CHECK_ALL_FOLDERS": "0",
    "IMAP_OBSOLETE_CLIENT": "0",
    "IMAP_UMASK": "022",
    "IMAP_USELOCKS": "1",
    "IMAP_ENHANCEDIDLE": "0",
    "IMAP_TRASHFOLDERNAME": "Trash",
    "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
    "HEADERFROM": "X-IMAP-Sender",
}

_AUTHDAEMONRC = """\
authmodulelist="authuserdb"
daemons=3
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
LOGGEROPTS=""
"""


class CourierServer(ThrowawayServer):
    """One Courier IMAP instance in a temporary directory, listening on 127.0.0.1 (plain).

    ``users`` maps names to passwords. ``maxperip`` caps the connections from one
    address (couriertcpd's own default is 4, Debian's imapd configuration sets 20).
    With ``tls`` it also listens with implicit TLS (couriertls) on ``tls_port`` and
    offers STARTTLS, with a certificate for 127.0.0.1 signed by ``ca_file``.
    """

    host = HOST
    prefix = PREFIX
    separator = SEPARATOR

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        maxperip: int = 40,
        tls: bool = False,
        startup_timeout: float = 20.0,
    ) -> None:
        self.maxperip = maxperip
        self.tls = tls
        self.startup_timeout = startup_timeout
        self._users = dict(users or {})
        for name, password in self._users.items():
            _check_account(name, password)
        self._lock = threading.Lock()
        super().__init__()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start Courier and wait until it greets and can authenticate; return self."""
        if self._server is not None:
            raise ServerError("this CourierServer is already running")
        tools = {
            "IMAPD": program(str(IMAPD)),
            "IMAPLOGIN": program(str(IMAPLOGIN)),
            "AUTHDAEMOND": program(AUTHDAEMOND),
            "COURIERTCPD": program(COURIERTCPD),
        }
        program(MAKEUSERDB)
        if not Path("/etc/courier").is_dir():
            raise ServerError("/etc/courier is missing: run `make sysdeps`")
        # /run is emptied at boot; the package's tmpfiles.d entry makes this on a system
        # with systemd. An empty directory, only ever a mount point here.
        Path("/run/courier").mkdir(exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="mailmover-courier-"))
        root.chmod(0o755)
        self._root = root
        try:
            for sub in ("etc/shared", "run/authdaemon", "mail"):
                (root / sub).mkdir(parents=True)
            (root / "etc/authdaemonrc").write_text(_AUTHDAEMONRC)
            if self.tls:
                make_certificates(root, "auto")
                pem = root / "etc/imapd.pem"
                pem.touch(mode=0o600)
                pem.write_bytes(
                    (root / "server.key").read_bytes() + (root / "server.pem").read_bytes()
                )
                # STARTTLS runs couriertls as the courier user, who owns Debian's pem too.
                courier = pwd.getpwnam("courier")
                os.chown(pem, courier.pw_uid, courier.pw_gid)
                shutil.copyfile(DHPARAMS, root / "etc/dhparams.pem")
            (root / "etc/userdb").touch(mode=0o600)
            with self._lock:
                for name, password in self._users.items():
                    self._write_user(name, password)
                self._make_userdb()
            for attempt in range(1, PORT_ATTEMPTS + 1):
                try:
                    self._launch(root, tools)
                    break
                except ServerError as exc:
                    self._server = None
                    if PORT_TAKEN not in str(exc) or attempt == PORT_ATTEMPTS:
                        raise
        except BaseException:
            self.stop()
            raise
        return self

    def maildir(self, user: str) -> Path:
        """The Maildir of ``user``."""
        return self.root / "mail" / user / "Maildir"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the instance's console output (authdaemond, couriertcpd)."""
        return self._server.console_tail(lines) if self._server is not None else ""

    # -- users -------------------------------------------------------------------------

    @property
    def users(self) -> dict[str, str]:
        with self._lock:
            return dict(self._users)

    def add_user(self, name: str, password: str) -> Account:
        """Add a user; a running Courier accepts it from the next login on."""
        _check_account(name, password)
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            self._users[name] = password
            if self._root is not None:
                self._write_user(name, password)
                self._make_userdb()
        return Account(name, password)

    # -- internals ---------------------------------------------------------------------

    def _launch(self, root: Path, tools: dict[str, str]) -> None:
        port = self._port = free_port()
        tls_port = self._tls_port = free_port() if self.tls else None
        env = {
            **tools,
            **_IMAPD_ENV,
            "IMAP_SHAREDINDEXFILE": str(root / "etc/shared/index"),
            "PORT": str(port),
            "TLS_PORT": "" if tls_port is None else str(tls_port),
            "MAXPERIP": str(self.maxperip),
        }
        if self.tls:
            env |= {
                "COURIERTLS": program(COURIERTLS),
                "IMAP_STARTTLS": "YES",
                "IMAP_TLS_REQUIRED": "0",
                "IMAP_CAPABILITY_TLS": _IMAPD_ENV["IMAP_CAPABILITY"] + " AUTH=PLAIN",
                "TLS_CERTFILE": str(root / "etc/imapd.pem"),
                "TLS_DHPARAMS": str(root / "etc/dhparams.pem"),
                "TLS_VERIFYPEER": "NONE",
            }
        self._server = Namespaced("Courier", root, _SCRIPT, env)
        socket_path = root / "run/authdaemon/socket"

        def ready() -> bool:
            if not (socket_path.exists() and greets(port)):
                return False
            return tls_port is None or greets(tls_port, root / "ca.pem")

        self._server.start(ready, self.startup_timeout)

    def _write_user(self, name: str, password: str) -> None:
        mail = pwd.getpwnam("mail")
        maildir = self.maildir(name)
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, mode=0o700)
        for path in (maildir.parent, maildir, *maildir.iterdir()):
            os.chown(path, mail.pw_uid, mail.pw_gid)
        fields = {
            "uid": str(mail.pw_uid),
            "gid": str(mail.pw_gid),
            "home": str(maildir.parent),
            "mail": str(maildir),
            "systempw": _sha512(password),
        }
        line = name + "\t" + "|".join(f"{k}={v}" for k, v in fields.items()) + "\n"
        with (self.root / "etc/userdb").open("a") as userdb:
            userdb.write(line)

    def _make_userdb(self) -> None:
        run_quietly([MAKEUSERDB, "-f", str(self.root / "etc/userdb")], what="makeuserdb")


def _sha512(password: str) -> str:
    # authlib 0.71 refuses its own {SSHA} form here; a throwaway server needs no salt.
    return "{SHA512}" + base64.b64encode(hashlib.sha512(password.encode()).digest()).decode()


def _check_account(name: str, password: str) -> None:
    if not _USER_NAME.match(name):
        raise ValueError(f"unusable user name {name!r}")
    if not password or any(c in password for c in "\r\n\0|"):
        raise ValueError("a password must be non-empty, without line breaks")
