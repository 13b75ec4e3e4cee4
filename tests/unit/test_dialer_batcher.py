"""``Batcher``: concurrent dials share one run of the blocking function; failures stay theirs."""

from __future__ import annotations

import asyncio
import threading

import pytest

from callcenter.dialer.worker import Batcher


def test_items_submitted_while_a_run_is_busy_share_the_next_run():
    runs: list[list[int]] = []
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        runs.append(list(items))
        if len(runs) == 1:
            release.wait(5)  # the first run is slow: the others queue meanwhile
        return [i * 10 for i in items]

    async def scenario() -> list[int]:
        batcher: Batcher[int, int] = Batcher(run)
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(i)) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        release.set()
        return list(await asyncio.gather(first, *rest))

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert runs == [[1], [2, 3, 4]]


def test_an_exception_returned_for_one_item_is_raised_in_its_submitter_only():
    def run(items: list[int]) -> list[int | Exception]:
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    async def scenario() -> list[object]:
        batcher: Batcher[int, int] = Batcher(run)
        return await asyncio.gather(*(batcher.submit(i) for i in (1, 2, 3)), return_exceptions=True)

    first, second, third = asyncio.run(scenario())
    assert (first, third) == (1, 3)
    assert isinstance(second, ValueError) and str(second) == "bad 2"


def test_a_failing_run_fails_every_item_of_it_and_the_batcher_keeps_working():
    calls = iter([RuntimeError("database gone"), None])

    def run(items: list[int]) -> list[int]:
        failure = next(calls)
        if failure is not None:
            raise failure
        return items

    async def scenario() -> None:
        batcher: Batcher[int, int] = Batcher(run)
        results = await asyncio.gather(*(batcher.submit(i) for i in (1, 2)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert await batcher.submit(7) == 7

    asyncio.run(scenario())


def test_a_run_giving_the_wrong_number_of_results_is_an_error():
    async def scenario() -> None:
        batcher: Batcher[int, int] = Batcher(lambda items: [])
        with pytest.raises(RuntimeError, match="batch of 1 gave 0 results"):
            await batcher.submit(1)

    asyncio.run(scenario())
