"""No secret in anything `mailmover copy` writes: output, trace, manifest, state database;
and no message body in the protocol trace.

One run copies with every output turned on (``--trace``, ``--json``,
``--manifest``, ``--state``, ``--debug``), logging in with LOGIN on one side
and AUTHENTICATE PLAIN (a base64 blob) on the other, one password from the
environment and one from a file; other runs fail to log in, with ``--debug``
and with the protocol trace on. Every byte they print or write is searched
for each password, for its base64 forms at every alignment, and for the SASL
PLAIN blob; the trace is also searched for every line of every message body.

OAuth2: a copy logs in to a Dovecot that checks tokens at a local authorization
server, with an access token given like a password on one side and, on the
other, a stored refresh token whose access token has expired (so the run
refreshes it). Every token the authorization server issued for the user, its
base64 forms and both SASL blobs (XOAUTH2, OAUTHBEARER) are searched for.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from mailmover.devserver import DevServer
from mailmover.imap import sasl
from support import corpus, runcli, snapshot
from support.oauth_dovecot import oauth_dovecot as support_oauth_dovecot
from support.oauth_server import OAuthServer


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield dovecot_factory(layout="fs"), dovecot_factory(layout="maildir++")


def needles(user: str, password: str, sasl_blobs: list[bytes] | None = None) -> dict[str, bytes]:
    """Byte strings that would give ``password`` away, by what they are."""
    raw = password.encode()
    plain = base64.b64encode(b"\0" + user.encode() + b"\0" + raw)
    found = {"password": raw}
    # SASL responses as they go on the wire (base64): PLAIN's, or those given
    for n, blob in enumerate(sasl_blobs if sasl_blobs is not None else [plain]):
        found[f"SASL response {n}"] = blob
    for shift in range(3):
        # The password inside a longer base64 text, ``shift`` bytes after a 3-byte
        # boundary: keep the characters that depend on its bytes alone.
        encoded = base64.b64encode(b"\0" * shift + raw)
        core = encoded[(4 * shift + 2) // 3 : (4 * (shift + len(raw))) // 3]
        found[f"base64 at offset {shift}"] = core
        found[f"urlsafe base64 at offset {shift}"] = core.replace(b"+", b"-").replace(b"/", b"_")
    return found


def leaks(
    blobs: dict[str, bytes],
    user: str,
    passwords: list[str],
    sasl_blobs: dict[str, list[bytes]] | None = None,
) -> list[str]:
    """Where any password shows up, as ``what in where`` lines."""
    out = []
    for password in passwords:
        found = needles(user, password, (sasl_blobs or {}).get(password))
        for what, needle in found.items():
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
    mail = runcli.folders(INBOX=corpus.bulk(6, seed=3), Later=corpus.bulk(4, seed=4))
    accounts.load(mail)
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
    assert accounts.problems(snapshot.corpus_snapshot(mail)) == []
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
    assert b"APPEND" in trace and b"FETCH" in trace  # and the messages going through
    assert bodies_in(trace, mail) == []
    blobs |= files
    assert leaks(blobs, accounts.user, [accounts.src_pw, accounts.dst_pw, wrong]) == []


def bodies_in(data: bytes, mail: corpus.Corpus) -> list[str]:
    """The body lines (16 bytes or more) of ``mail`` found in ``data``."""
    out = []
    for message in corpus.all_messages(mail):
        body = message.raw.split(b"\r\n\r\n", 1)[1]
        lines = [line for line in body.split(b"\r\n") if len(line.strip()) >= 16]
        assert lines, message.raw[:200]  # every message has something to look for
        out += [f"{line[:40]!r}" for line in lines if line in data]
    return out


# -- OAuth2 ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(oauth: OAuthServer, dovecot_factory) -> Iterator[DevServer]:
    """A Dovecot that checks XOAUTH2 and OAUTHBEARER tokens at ``oauth`` (RFC 7662)."""
    with support_oauth_dovecot(dovecot_factory, oauth, layout="fs") as dovecot:
        yield dovecot


def test_no_oauth_token_in_anything_written(
    oauth: OAuthServer, oauth_dovecot: DevServer, dovecot_factory, tmp_path: Path
) -> None:
    from mailmover.oauth import TokenSet, TokenStore, oauth_client

    server = oauth_dovecot
    src_user, dst_user = (f"{side}-{secrets.token_hex(3)}@example.com" for side in "sd")
    for user in (src_user, dst_user):  # the mail folders exist once a password login made them
        server.add_user(user, secrets.token_urlsafe(12))
    mail = runcli.folders(INBOX=corpus.bulk(5, seed=8), Notes=corpus.bulk(3, seed=9))
    snapshot.load(mail, server.host, server.port, src_user, server.users[src_user])
    source = snapshot.SourceGuard(server.host, server.port, src_user, server.users[src_user])

    # The source: an access token given like a password. The destination: a stored
    # refresh token whose access token has expired, refreshed by the run.
    given, _ = oauth.issue(src_user)
    expired, refresh = oauth.issue(dst_user, ttl=0)
    data = tmp_path / "data"
    store = TokenStore.open(data / "mailmover" / "oauth-tokens.json", secret_key=None)
    client = oauth_client("test", oauth.client_id, token_url=oauth.token_url)
    old = datetime.now(UTC) - timedelta(minutes=5)
    store.save("test", dst_user, TokenSet(expired, old, refresh), client)

    out_dir = tmp_path / "written"
    out_dir.mkdir()
    urls = [
        f"imap://{quote(user, safe='')}@{server.host}:{server.port}?tls=none&auth={auth}"
        for user, auth in ((src_user, "oauthbearer"), (dst_user, "xoauth2"))
    ]
    refreshes = oauth.refreshes
    out = runcli.run(
        "copy", *urls, "--json", "--debug", "--state", str(out_dir / "state.db"),
        "--trace", str(out_dir / "trace.log"), "--manifest", str(out_dir / "manifest.json"),
        env={"MAILMOVER_SOURCE_PASSWORD": given, "XDG_DATA_HOME": str(data)},
    )  # fmt: skip
    assert out.code == 0, str(out)
    assert oauth.refreshes > refreshes  # the stored refresh token was used
    assert source.changes() == []
    want = snapshot.corpus_snapshot(mail)
    got = snapshot.snapshot(server.host, server.port, dst_user, server.users[dst_user])
    assert want.differences(got) == []

    files = written(out_dir)
    assert {"trace.log", "state.db", "manifest.json"} <= {Path(p).name for p in files}
    assert b"AUTHENTICATE" in files[str(out_dir / "trace.log")]
    assert bodies_in(files[str(out_dir / "trace.log")], mail) == []
    blobs = files | printed(out, "copy")
    tokens = {
        user: oauth.access_tokens(user) + oauth.refresh_tokens(user)
        for user in (src_user, dst_user)
    }
    assert given in tokens[src_user] and {expired, refresh} <= set(tokens[dst_user])
    assert len(tokens[dst_user]) >= 3  # the refreshed access token too
    found = []
    for user, issued in tokens.items():
        blobs_of = {
            token: [
                sasl.xoauth2(user, token),
                sasl.oauthbearer(user, token, server.host, server.port),
            ]
            for token in issued
        }
        found += leaks(blobs, user, issued, blobs_of)
    assert found == []
