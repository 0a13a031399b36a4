"""A relay's literal: bytes as they are read, the last one only for a body read whole at
the announced size, and an error (the connection is then dropped) otherwise."""

from __future__ import annotations

import asyncio

import pytest

from mailmover.engine.relay import Relay
from mailmover.errors import ConnectionLost

BODY = bytes(range(256)) * 40  # 10,240 bytes


async def collect(relay: Relay, into: bytearray) -> None:
    async for chunk in relay.chunks():
        into += chunk


async def test_bytes_flow_as_read_and_the_last_one_only_when_whole() -> None:
    started: list[Relay] = []
    relay = Relay(7, len(BODY), started.append)
    got = bytearray()
    reader = asyncio.create_task(collect(relay, got))
    relay.feed(BODY[:4096])
    assert started == [relay]  # the first bytes start it, once
    await asyncio.sleep(0)
    assert bytes(got) == BODY[:4096]
    relay.feed(BODY)  # all of it, but not yet checked: held back
    relay.feed(BODY[:8192])
    await asyncio.sleep(0)
    assert bytes(got) == BODY[:8192]
    assert not reader.done()
    relay.finish(BODY)
    await asyncio.wait_for(reader, 1)
    assert bytes(got) == BODY
    assert started == [relay]


@pytest.mark.parametrize(
    "ending",
    [
        pytest.param(lambda r: r.fail("the source link failed"), id="failed"),
        pytest.param(lambda r: r.finish(BODY[:-1]), id="short"),
        pytest.param(lambda r: r.finish(BODY + b"x"), id="long"),
        pytest.param(lambda r: r.finish(b"y" + BODY[1:]), id="other bytes"),
        pytest.param(lambda r: r.end(), id="read ended without a body"),
    ],
)
async def test_a_body_not_read_whole_never_ends_the_literal(ending) -> None:
    relay = Relay(7, len(BODY), lambda _: None)
    got = bytearray()
    reader = asyncio.create_task(collect(relay, got))
    relay.feed(BODY[: len(BODY) - 1])  # everything but the last byte
    await asyncio.sleep(0)
    ending(relay)
    with pytest.raises(ConnectionLost, match="UID 7"):
        await asyncio.wait_for(reader, 1)
    assert len(got) < len(BODY)
    assert relay.broken
    relay.finish(BODY)  # too late: it stays broken
    assert relay.broken
