"""The byte budget (``engine.budget.ByteBudget``): what may be held at once, and no deadlock."""

from __future__ import annotations

import asyncio
import random

from mailmover.engine.budget import ByteBudget


async def settle() -> None:
    """Let every ready task run until it waits on something."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_try_acquire_takes_what_fits_and_never_waits() -> None:
    budget = ByteBudget(10)
    assert budget.try_acquire(6)
    assert budget.try_acquire(4)
    assert budget.held == 10
    assert not budget.try_acquire(1)
    assert budget.held == 10  # a refusal takes nothing
    await budget.release(4)
    assert budget.try_acquire(3)
    assert budget.held == 9


async def test_acquire_waits_for_a_release_that_makes_room() -> None:
    budget = ByteBudget(10)
    await budget.acquire(8)
    waiter = asyncio.create_task(budget.acquire(5))
    await settle()
    assert not waiter.done()
    await budget.release(2)  # 6 + 5 > 10: still waiting
    await settle()
    assert not waiter.done()
    await budget.release(3)  # 3 + 5 <= 10
    await settle()
    assert waiter.done()
    assert budget.held == 8


async def test_one_release_lets_in_every_waiter_that_now_fits() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    waiters = [asyncio.create_task(budget.acquire(3)) for _ in range(4)]
    await settle()
    assert not any(w.done() for w in waiters)
    await budget.release(10)
    await settle()
    assert [w.done() for w in waiters] == [True, True, True, False]
    assert budget.held == 9
    await budget.release(3)
    await settle()
    assert all(w.done() for w in waiters)


async def test_a_request_larger_than_the_budget_goes_alone_when_nothing_is_held() -> None:
    budget = ByteBudget(10)
    assert budget.try_acquire(25)
    assert budget.held == 25
    assert not budget.try_acquire(1)  # nothing else while it is held
    await budget.release(25)
    assert budget.held == 0


async def test_a_request_larger_than_the_budget_waits_for_everything_to_be_given_back() -> None:
    budget = ByteBudget(10)
    await budget.acquire(2)
    await budget.acquire(3)
    big = asyncio.create_task(budget.acquire(40))
    await settle()
    assert not big.done()
    await budget.release(2)
    await settle()
    assert not big.done()  # 3 bytes still held
    await budget.release(3)
    await settle()
    assert big.done()
    assert budget.held == 40
    small = asyncio.create_task(budget.acquire(1))
    await settle()
    assert not small.done()  # the large one goes alone
    await budget.release(40)
    await settle()
    assert small.done()


async def test_waiters_are_served_in_the_order_they_asked_when_room_comes_back() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    big = asyncio.create_task(budget.acquire(20))  # asked first
    await settle()
    small = asyncio.create_task(budget.acquire(5))
    await settle()
    await budget.release(10)
    await settle()
    assert big.done() and not small.done()
    await budget.release(20)
    await settle()
    assert small.done()


async def test_many_workers_never_deadlock_and_never_overfill() -> None:
    """Sizes up to twice the limit, from many tasks: all finish, and beyond the limit
    only a single oversize request is ever held."""
    limit = 100
    budget = ByteBudget(limit)
    rng = random.Random(5)
    holders: list[int] = []
    overfilled: list[list[int]] = []

    async def worker(sizes: list[int]) -> int:
        for size in sizes:
            if not budget.try_acquire(size):
                await budget.acquire(size)
            holders.append(size)
            if budget.held > limit and holders != [size]:
                overfilled.append(list(holders))
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            holders.remove(size)
            await budget.release(size)
        return len(sizes)

    plans = [[rng.randint(1, 2 * limit) for _ in range(50)] for _ in range(12)]
    done = await asyncio.wait_for(asyncio.gather(*(worker(p) for p in plans)), timeout=60)
    assert done == [50] * 12
    assert overfilled == []
    assert budget.held == 0


async def test_a_cancelled_waiter_takes_nothing() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    waiter = asyncio.create_task(budget.acquire(5))
    await settle()
    waiter.cancel()
    await settle()
    assert waiter.cancelled()
    await budget.release(10)
    assert budget.held == 0
    assert budget.try_acquire(10)
