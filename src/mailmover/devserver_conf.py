"""The files a ``DevServer`` is made of: its options, dovecot.conf and TLS certificates."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Layout = Literal["maildir++", "fs"]
CertTool = Literal["auto", "trustme", "openssl"]

HOST = "127.0.0.1"
#: mailboxes that carry a SPECIAL-USE attribute (RFC 6154) once created
SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

_SBIN_PATH = "/usr/sbin:/usr/local/sbin:/sbin"

_CONFIG = """\
# Throwaway Dovecot written by mailmover.devserver
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailmover-{plain}
protocols = imap
listen = {host}
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.key
auth_mechanisms = plain login
disable_plaintext_auth = no
auth_verbose = yes
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u{layout}
mail_fsync = never
first_valid_uid = {uid}
mail_max_userip_connections = 100
mail_plugins ={plugins}
passdb {{
  driver = passwd-file
  # One file per user: Dovecot rereads a passwd-file at most once a second, but
  # opens a file it has not seen on the first lookup, so new users work at once.
  args = scheme=PLAIN username_format=%u {root}/passwd.d/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix = {prefix}
{mailboxes}}}
service imap-login {{
{chroot}  service_count = 0
  inet_listener imap {{
    port = {plain}
  }}
  inet_listener imaps {{
    port = {tls}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 1000
}}
# Without this, every failed login from 127.0.0.1 slows all later logins (up to 15 s).
service anvil {{
{chroot}  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_plugins = $mail_plugins{zlib}
}}
{more}
"""

# Extensions as strict verifiers (Python 3.13's VERIFY_X509_STRICT) expect them.
_OPENSSL_CONF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = mailmover test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


class DevServerError(RuntimeError):
    """The development Dovecot server failed."""


@dataclass(frozen=True)
class ServerOptions:
    """How a DevServer's Dovecot is configured (see ``DevServer``)."""

    layout: Layout = "maildir++"
    separator: str | None = None
    prefix: str = ""
    max_message_size: int | None = None
    compress: bool = True
    special_use: bool = True
    extra_conf: str = ""
    quota: bool = False  # the quota plugin, for limits set per user with set_quota

    def __post_init__(self) -> None:
        if self.layout not in ("maildir++", "fs"):
            raise ValueError(f"unknown layout {self.layout!r}")
        sep = self.hierarchy_separator
        if len(sep) != 1 or sep.isalnum() or sep.isspace() or sep in '"\\%*{}':
            raise ValueError(f"unusable hierarchy separator {sep!r}")
        if self.prefix and not self.prefix.endswith(sep):
            raise ValueError("a namespace prefix must end with the hierarchy separator")
        if self.max_message_size is not None and self.max_message_size < 1:
            raise ValueError("max_message_size must be positive")

    @property
    def hierarchy_separator(self) -> str:
        """The separator given, else the layout's own (``.`` for Maildir++, ``/`` for fs)."""
        if self.separator is not None:
            return self.separator
        return "." if self.layout == "maildir++" else "/"


def mail_ids() -> tuple[int, int]:
    """The uid and gid that own the mail: Dovecot's ``dovecot`` user, or ourselves."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        entry = pwd.getpwnam("dovecot")
    except KeyError as exc:
        raise DevServerError("the 'dovecot' system user is missing; reinstall Dovecot") from exc
    return entry.pw_uid, entry.pw_gid


def find_program(name: str) -> str:
    """Path of a program, looking in the sbin directories too."""
    path = os.environ.get("PATH", "") + os.pathsep + _SBIN_PATH
    found = shutil.which(name, path=path)
    if found is None:
        raise DevServerError(f"{name} not found: install Dovecot (`make sysdeps`)")
    return found


def render_config(options: ServerOptions, root: Path, ports: tuple[int, int]) -> str:
    """dovecot.conf for an instance living in ``root`` and listening on ``ports``."""
    uid, gid = mail_ids()
    mailboxes = "".join(
        f"  mailbox {name} {{\n    special_use = {flag}\n  }}\n"
        for name, flag in SPECIAL_USE.items()
        if options.special_use
    )
    plugins, quota = "", ""
    if options.max_message_size is not None or options.quota:
        # Dovecot 2.3 has no APPENDLIMIT; the quota plugin refuses larger
        # APPENDs with [LIMIT], before a synchronising literal is sent.
        # Per-user storage limits come from the users' passwd files (set_quota).
        plugins = " quota"
        size = options.max_message_size
        quota = (
            "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n"
            + (f"  quota_max_mail_size = {size}\n" if size is not None else "")
            + "}\n"
        )
    identity, chroot = "", ""
    if os.geteuid() != 0:
        # Rootless: every Dovecot process runs as us, login processes unchrooted.
        user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        identity = (
            f"default_internal_user = {user}\ndefault_internal_group = {group}\n"
            f"default_login_user = {user}\n"
            "service auth-worker {\n  user = $default_internal_user\n}\n"
        )
        chroot = "  chroot =\n"
    return _CONFIG.format(
        root=root,
        host=HOST,
        plain=ports[0],
        tls=ports[1],
        uid=uid,
        gid=gid,
        layout=":LAYOUT=fs" if options.layout == "fs" else "",
        separator=options.hierarchy_separator,
        prefix=options.prefix,
        mailboxes=mailboxes,
        chroot=chroot,
        plugins=plugins,
        zlib=" imap_zlib" if options.compress else "",
        more=identity + quota + options.extra_conf,
    )


def make_certificates(root: Path, tool: CertTool) -> None:
    """Write ca.pem, and server.pem + server.key for 127.0.0.1 and localhost, into root."""
    if tool != "openssl":
        try:
            import trustme
        except ImportError:
            if tool == "trustme":
                raise DevServerError("trustme is not installed") from None
        else:
            ca = trustme.CA()
            leaf = ca.issue_cert(HOST, "localhost")
            ca.cert_pem.write_to_path(str(root / "ca.pem"))
            leaf.private_key_pem.write_to_path(str(root / "server.key"))
            (root / "server.pem").write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
            return
    openssl = find_program("openssl")
    conf = root / "openssl.cnf"
    conf.write_text(_OPENSSL_CONF)
    new_key = ["-config", str(conf), "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    new_key.append("-nodes")
    serial = str(secrets.randbits(63))
    steps = [
        ["req", "-x509", *new_key, "-days", "7", "-extensions", "ca",
         "-keyout", "ca.key", "-out", "ca.pem"],
        ["req", "-new", *new_key, "-subj", "/CN=localhost",
         "-keyout", "server.key", "-out", "server.csr"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "7",
         "-set_serial", serial, "-extfile", str(conf), "-extensions", "server",
         "-out", "server.pem"],
    ]  # fmt: skip
    for step in steps:
        result = subprocess.run([openssl, *step], cwd=root, capture_output=True)
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise DevServerError(f"openssl {step[0]} failed: {message}")
