"""TLS as users meet it: the system's trust store, a certificate for another name,
``--insecure``, and a man in the middle who hides STARTTLS.

The servers' CAs are not in the machine's trust store; ``SSL_CERT_FILE`` (which
OpenSSL, and so Python's default context, reads in its place) makes them
trusted the way an administrator's own CA would be. The source Dovecot also
listens on 127.0.0.2, which its certificate (for 127.0.0.1 and localhost) does
not name. Every copy that goes ahead is judged by the imaplib oracle; every
refusal must be one clear line, exit 3, before any password is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailmover.devserver import DevServer
from support import corpus, runcli, snapshot
from support.proxy import Direction, Proxy

OTHER_NAME = "127.0.0.2"  # loopback too, but not in the certificate


@pytest.fixture(scope="module")
def servers(dovecot_factory) -> Iterator[tuple[DevServer, DevServer]]:
    yield (
        dovecot_factory(layout="fs", extra_conf=f"listen = 127.0.0.1, {OTHER_NAME}\n"),
        dovecot_factory(layout="maildir++"),
    )


def loaded(servers: tuple[DevServer, DevServer], tmp_path: Path, name: str) -> runcli.Accounts:
    accounts = runcli.Accounts(*servers, tmp_path, name)
    accounts.load(runcli.folders(INBOX=corpus.bulk(5, seed=41), Work=corpus.bulk(3, seed=42)))
    return accounts


def without_ca_settings() -> dict[str, str]:
    """The environment with no CA of ours in it (a user's shell)."""
    drop = {"MAILMOVER_CA_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_clean(*args: str, env: dict[str, str]) -> runcli.Outcome:
    import subprocess

    proc = subprocess.run(
        runcli.command(*args), capture_output=True, text=True, timeout=120,
        env={**without_ca_settings(), **env},
    )  # fmt: skip
    return runcli.Outcome(proc.returncode, proc.stdout, proc.stderr)


def test_a_ca_in_the_system_trust_store(servers, tmp_path: Path) -> None:
    src, dst = servers
    accounts = loaded(servers, tmp_path, "truststore")
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(src.ca_file.read_bytes() + dst.ca_file.read_bytes())
    # Implicit TLS to the source, STARTTLS to the destination; no --ca-file.
    urls = [
        f"imaps://{accounts.user}@127.0.0.1:{src.tls_port}",
        f"imap://{accounts.user}@127.0.0.1:{dst.port}",
    ]
    args = ["copy", *urls, "--json", "--state", str(accounts.state)]

    untrusted = run_clean(*args, env=accounts.env)
    assert untrusted.code == 3, str(untrusted)
    assert len(untrusted.stderr_lines) == 1 and "certificate" in untrusted.stderr, str(untrusted)

    out = run_clean(*args, env={**accounts.env, "SSL_CERT_FILE": str(bundle)})
    assert out.code == 0, str(out)
    want = snapshot.corpus_snapshot(
        runcli.folders(INBOX=corpus.bulk(5, seed=41), Work=corpus.bulk(3, seed=42))
    )
    assert accounts.problems(want) == []


def test_a_certificate_for_another_name_is_refused(servers, tmp_path: Path) -> None:
    src = servers[0]
    accounts = loaded(servers, tmp_path, "othername")
    url = f"imaps://{accounts.user}@{OTHER_NAME}:{src.tls_port}"
    out = run_clean(
        "copy", url, accounts.dst_url(), "--ca-file", str(src.ca_file),
        "--state", str(accounts.state), env=accounts.env,
    )  # fmt: skip
    assert out.code == 3, str(out)
    [line] = out.stderr_lines
    assert line.startswith("mailmover: ") and OTHER_NAME in line and "certificate" in line, line
    # The CA is trusted: the remedy is the name (or --insecure), not another CA.
    assert "not for" in line and "--ca-file" not in line, line
    assert "Traceback" not in out.stderr
    assert accounts.dst_snapshot().message_count() == 0
    assert accounts.source_changes() == []


def test_insecure_accepts_that_certificate(servers, tmp_path: Path) -> None:
    src = servers[0]
    accounts = loaded(servers, tmp_path, "insecure")
    url = f"imaps://{accounts.user}@{OTHER_NAME}:{src.tls_port}"
    out = run_clean(
        "copy", url, accounts.dst_url(), "--insecure", "--json",
        "--state", str(accounts.state), env=accounts.env,
    )  # fmt: skip
    assert out.code == 0, str(out)
    want = snapshot.corpus_snapshot(
        runcli.folders(INBOX=corpus.bulk(5, seed=41), Work=corpus.bulk(3, seed=42))
    )
    assert accounts.problems(want) == []


async def test_starttls_hidden_by_a_man_in_the_middle_is_refused(servers, tmp_path) -> None:
    src = servers[0]
    accounts = loaded(servers, tmp_path, "strip")
    seen: dict[Direction, bytearray] = {"to_server": bytearray(), "to_client": bytearray()}

    def strip(connection: int, direction: Direction, data: bytes) -> bytes:
        if direction == "to_client":
            data = data.replace(b" STARTTLS", b"")
        seen[direction] += data
        return data

    async with Proxy(src.host, src.port) as proxy:
        proxy.tap = strip
        url = f"imap://{accounts.user}@127.0.0.1:{proxy.port}"  # STARTTLS asked for
        out = await runcli.run_async(
            "copy", url, accounts.dst_url(), "--ca-file", str(src.ca_file),
            "--state", str(accounts.state), env=accounts.env, timeout=60,
        )  # fmt: skip
    assert proxy.accepted >= 1 and b"* OK" in seen["to_client"]  # it did go through
    assert b"STARTTLS" not in seen["to_client"]
    assert out.code == 3, str(out)
    [line] = out.stderr_lines
    assert "STARTTLS" in line, line
    # Nothing was said in plain text past asking for the capabilities.
    assert b"LOGIN" not in seen["to_server"].upper()
    assert b"AUTHENTICATE" not in seen["to_server"].upper()
    assert accounts.src_pw.encode() not in seen["to_server"]
    assert accounts.dst_snapshot().message_count() == 0
