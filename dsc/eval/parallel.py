"""Monte-Carlo work split over processes: one worker per device, results in item order.

An item (a batch of trials or of digits) is computed by the same function on the same inputs
whichever worker takes it, and results come back in item order, so a reduction over them is
bit-identical to the single-process run on the same kind of device: randomness is keyed by
trial or digit index, never by worker.
"""

from __future__ import annotations

import multiprocessing
import os
from functools import partial
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import torch

from dsc.coding.validation import check_positive_int
from dsc.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")
_WORKER_DEVICE: torch.device | None = None  # set in each worker process


def worker_devices(device: torch.device, workers: int) -> list[torch.device]:
    """One device per worker: ``cuda`` with ``workers`` N -> cuda:0 .. cuda:N-1 (one process per
    GPU); the CPU -> N processes sharing its cores."""
    check_positive_int(workers, "workers")
    if workers == 1:
        return [device]
    if device.type != "cuda":
        return [device] * workers
    if device.index is not None:
        raise ConfigError(f"device={device} names one GPU; with workers={workers} pass device=cuda "
                          "(workers use cuda:0 .. cuda:N-1)")
    present = torch.cuda.device_count()
    if workers > present:
        raise ConfigError(f"workers={workers} needs {workers} GPUs, {present} present")
    return [torch.device("cuda", i) for i in range(workers)]


def _init_worker(devices, threads: int) -> None:
    global _WORKER_DEVICE
    _WORKER_DEVICE = devices.get()
    torch.set_num_threads(threads)
    if _WORKER_DEVICE.type == "cuda":
        torch.cuda.set_device(_WORKER_DEVICE)


def _call(fn: Callable[[T, torch.device], R], item: T) -> R:
    return fn(item, _WORKER_DEVICE)


class WorkerPool:
    """``with WorkerPool(devices) as pool: pool.map(fn, items)`` -> ``fn(item, device)`` for
    every item, in item order. One device runs in this process; several spawn one worker each
    (``fn`` and the items must pickle: module-level functions, ``functools.partial``)."""

    def __init__(self, devices: Sequence[torch.device]) -> None:
        if not devices:
            raise ConfigError("a worker pool needs at least one device")
        self.devices = list(devices)
        self._pool = None

    def __enter__(self) -> "WorkerPool":
        if len(self.devices) > 1:
            context = multiprocessing.get_context("spawn")
            queue = context.SimpleQueue()
            for device in self.devices:
                queue.put(device)
            threads = max(1, (os.cpu_count() or 1) // len(self.devices))
            self._pool = context.Pool(len(self.devices), initializer=_init_worker, initargs=(queue, threads))
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.terminate() if exc[0] is not None else self._pool.close()
            self._pool.join()
            self._pool = None

    def map(self, fn: Callable[[T, torch.device], R], items: Iterable[T]) -> Iterator[R]:
        if self._pool is None:
            return (fn(item, self.devices[0]) for item in items)
        return self._pool.imap(partial(_call, fn), items)
