"""Concurrent single requests share one scoring call; a bad record fails only itself."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from itsm_ml.serving.batching import MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError("negative")
        return [i * 10 for i in items]


def run(items: list[int], score: Recorder, max_items: int = 64) -> list[object]:
    async def main() -> list[object]:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            score, wait_seconds=0.02, max_items=max_items
        )
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
        finally:
            await batcher.stop()

    return asyncio.run(main())


def test_concurrent_items_are_scored_in_one_call_each_getting_its_own_answer() -> None:
    score = Recorder()
    assert run(list(range(8)), score) == [i * 10 for i in range(8)]
    assert score.calls == [list(range(8))]


def test_batches_are_capped() -> None:
    score = Recorder()
    run(list(range(10)), score, max_items=4)
    assert [len(c) for c in score.calls] == [4, 4, 2]


def test_a_failing_item_fails_alone() -> None:
    score = Recorder()
    results = run([1, -1, 2], score)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)


def test_submit_before_start_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(Recorder(), wait_seconds=0, max_items=1)
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(batcher.submit(1))
