"""Single requests that arrive together are scored together.

A one-ticket call to a model costs nearly as much as an eight-ticket call (pandas and
LightGBM have a fixed cost per call), so under concurrent load the service gathers the
requests waiting for the scorer into one call. One scoring thread runs at a time (the work
holds the GIL anyway); while it runs, the next batch fills. A batch that fails is retried
one request at a time, so a single bad record fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio.to_thread

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(
        self,
        score: Callable[[Sequence[Item]], list[Result]],
        *,
        wait_seconds: float,
        max_items: int,
    ) -> None:
        self._score = score
        self._wait = wait_seconds
        self._max = max_items
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def submit(self, item: Item) -> Result:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._wait
            while len(batch) < self._max:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            pending = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if pending:
                await self._score_batch(pending)

    async def _score_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await anyio.to_thread.run_sync(self._score, items)
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for one in batch:  # find the record that broke the batch; the rest still answer
                await self._score_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
