"""An mbsync (isync 1.4) configuration that copies one IMAP account into another.

Far is the source, Near the destination; ``Sync Pull`` with ``Create Near``
brings every folder and message across, ``CopyArrivalDate yes`` keeps internal
dates. Plain text on loopback: ``SSLType None`` and ``AuthMechs LOGIN`` (the
``*`` default excludes mechanisms that send a password in the clear when
there is no TLS).
"""

from __future__ import annotations

from pathlib import Path

_TEMPLATE = """\
SyncState {state}/
FSync yes

IMAPAccount far
Host 127.0.0.1
Port {far_port}
User {far_user}
PassCmd "cat {far_pass}"
SSLType None
AuthMechs LOGIN
Timeout 120

IMAPStore far
Account far

IMAPAccount near
Host 127.0.0.1
Port {near_port}
User {near_user}
PassCmd "cat {near_pass}"
SSLType None
AuthMechs LOGIN
Timeout 120

IMAPStore near
Account near

Channel copy
Far :far:
Near :near:
Patterns * INBOX
Create Near
Sync Pull
Expunge None
Remove None
CopyArrivalDate yes
"""


def write_config(
    directory: Path,
    far: tuple[int, str, str],
    near: tuple[int, str, str],
) -> Path:
    """Write the configuration (and password files, mode 600) into ``directory``;
    ``far``/``near`` are (port, user, password). Return the configuration's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state").mkdir(exist_ok=True)
    paths = {}
    for side, (_, _, password) in (("far", far), ("near", near)):
        path = directory / f"{side}.pass"
        path.touch(mode=0o600)
        path.write_text(password + "\n")
        paths[side] = path
    config = directory / "mbsyncrc"
    config.write_text(
        _TEMPLATE.format(
            state=directory / "state",
            far_port=far[0],
            far_user=far[1],
            far_pass=paths["far"],
            near_port=near[0],
            near_user=near[1],
            near_pass=paths["near"],
        )
    )
    config.chmod(0o600)
    return config
