"""No password in anything `mailmover copy` writes: output, trace, manifest, state database.

One run copies with every output turned on (``--trace``, ``--json``,
``--manifest``, ``--state``, ``--debug``), logging in with LOGIN on one side
and AUTHENTICATE PLAIN (a base64 blob) on the other, one password from the
environment and one from a file; other runs fail to log in, with ``--debug``
and with the protocol trace on. Every byte they print or write is searched
for each password, for its base64 forms at every alignment, and for the SASL
PLAIN blob.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def needles(user: str, password: str) -> dict[str, bytes]:
    """Byte strings that would give ``password`` away, by what they are."""
    raw = password.encode()
    found = {"password": raw, "SASL PLAIN": base64.b64encode(b"\0" + user.encode() + b"\0" + raw)}
    for shift in range(3):
        # The password inside a longer base64 text, ``shift`` bytes after a 3-byte
        # boundary: keep the characters that depend on its bytes alone.
        encoded = base64.b64encode(b"\0" * shift + raw)
        core = encoded[(4 * shift + 2) // 3 : (4 * (shift + len(raw))) // 3]
        found[f"base64 at offset {shift}"] = core
        found[f"urlsafe base64 at offset {shift}"] = core.replace(b"+", b"-").replace(b"/", b"_")
    return found


def leaks(blobs: dict[str, bytes], user: str, passwords: list[str]) -> list[str]:
    """Where any password shows up, as ``what in where`` lines."""
    out = []
    for password in passwords:
        for what, needle in needles(user, password).items():
            assert len(needle) >= 12, what  # long enough never to match by chance
            out += [f"{what} of {password[:3]}… in {where}" for where, data in blobs.items()
                    if needle in data]  # fmt: skip
    return out


def written(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (state database with its WAL, trace, manifest)."""
    return {str(p): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def printed(out: runcli.Outcome, label: str) -> dict[str, bytes]:
    return {f"{label} stdout": out.stdout.encode(), f"{label} stderr": out.stderr.encode()}


def test_no_password_in_anything_written(servers, tmp_path: Path) -> None:
    src, dst = servers
    accounts = runcli.Accounts(src, dst, tmp_path, "secrets")
    accounts.load(runcli.folders(INBOX=corpus.bulk(6, seed=3), Later=corpus.bulk(4, seed=4)))
    out_dir = tmp_path / "written"
    out_dir.mkdir()
    password_file = tmp_path / "dest-password"
    password_file.write_text(accounts.dst_pw + "\n")
    state = out_dir / "state.db"
    everything = [
        "--trace", str(out_dir / "trace.log"), "--json", "--state", str(state), "--debug",
        "--connections", "2",
    ]  # fmt: skip
    blobs: dict[str, bytes] = {}

    ok = runcli.run(
        "copy", accounts.src_url(), accounts.dst_url() + "&auth=plain", *everything,
        "--manifest", str(out_dir / "manifest.json"), "--dest-password-file", str(password_file),
        env={"MAILMOVER_SOURCE_PASSWORD": accounts.src_pw},
    )  # fmt: skip
    assert ok.code == 0, str(ok)
    assert ok.report["copied"] == 10, ok.report
    blobs |= printed(ok, "copy")

    wrong = f"Wr0ng-{secrets.token_urlsafe(12)}"
    for auth, label in (("", "LOGIN"), ("&auth=plain", "AUTHENTICATE PLAIN")):
        failed = runcli.run(
            "copy", accounts.src_url(), accounts.dst_url() + auth, *everything,
            env={"MAILMOVER_SOURCE_PASSWORD": accounts.src_pw, "MAILMOVER_DEST_PASSWORD": wrong},
        )  # fmt: skip
        assert failed.code == 3, str(failed)
        assert "Traceback" in failed.stderr  # --debug did show one
        blobs |= printed(failed, f"failed {label}")

    files = written(out_dir)
    assert {"trace.log", "state.db", "manifest.json"} <= {Path(p).name for p in files}
    trace = files[str(out_dir / "trace.log")]
    assert b"LOGIN" in trace and b"AUTHENTICATE" in trace  # the trace saw both logins
    blobs |= files
    assert leaks(blobs, accounts.user, [accounts.src_pw, accounts.dst_pw, wrong]) == []
