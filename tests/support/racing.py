"""Several stores racing: each one stands for a process of its own on one job database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mailmover.store import Store


def race(url: str, racers: int, work: Callable[[Store, int], Any]) -> list[Any]:
    """Run ``work(store, n)`` in ``racers`` threads at once, each on its own Store."""
    stores = [Store.open(url) for _ in range(racers)]
    start = threading.Barrier(racers)
    results: list[Any] = [None] * racers
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = work(stores[n], n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == []
    return results
