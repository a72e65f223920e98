"""Where a sweep's tasks run: one interface, three executors (docs/whatif.md).

An executor runs ``fn(shared, task)`` for every task and returns the results in task order,
whatever order they finished in, so every executor gives the same output. ``shared`` (the
resolved catalog and the base spec) is sent to each worker once: as the process pool's
initializer argument, or one ``ray.put`` object; tasks carry only their scenarios.

- ``serial``: in this process.
- ``process``: a ``concurrent.futures.ProcessPoolExecutor`` of N workers (spawned, so a
  worker never inherits solver or Ray threads from the parent).
- ``ray``: Ray tasks on a local Ray (started with N CPUs when none is running) or the
  cluster at ``address`` (``RAY_ADDRESS`` when not given). Ray is an optional extra:
  ``pip install -e .[ray]``; without it the executor is an input error (exit 2).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

from planner.errors import InputError

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int], None]
"""Called with the number of items a finished task held."""

EXECUTORS: tuple[str, ...] = ("serial", "process", "ray")
"""The registry of executors (the CLI's --executor choices read it)."""


class Executor(Protocol):
    name: str
    workers: int

    def run(self, fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], sizes: Sequence[int],
            progress: Progress | None = None) -> list[R]:
        """``[fn(shared, t) for t in tasks]``, computed wherever the executor runs them."""
        ...


class SerialExecutor:
    name = "serial"
    workers = 1

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], sizes: Sequence[int],
            progress: Progress | None = None) -> list[Any]:
        out = []
        for task, size in zip(tasks, sizes):
            out.append(fn(shared, task))
            if progress:
                progress(size)
        return out


_SHARED: Any = None


def _init(shared: Any) -> None:
    global _SHARED
    # a worker starts with Ctrl-C ignored (ProcessExecutor.run): from here on it ends at once and
    # quietly, no KeyboardInterrupt traceback; the parent reports the interruption
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _SHARED = shared


def _call(fn: Callable[[Any, T], R], task: T) -> R:
    return fn(_SHARED, task)


class _workers_ignore_ctrl_c:
    """While the pool spawns its workers: SIGINT ignored, a disposition a spawned process inherits,
    so that a worker still importing when Ctrl-C arrives prints no traceback (Python installs its
    KeyboardInterrupt handler only where SIGINT is not ignored); _init restores the default."""

    def __enter__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()    # signals: main thread only
        if self.main:
            self.previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        if self.main:
            signal.signal(signal.SIGINT, self.previous)


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], sizes: Sequence[int],
            progress: Progress | None = None) -> list[Any]:
        results: list[Any] = [None] * len(tasks)
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init, initargs=(shared,))
        try:
            with _workers_ignore_ctrl_c():
                pending = {pool.submit(_call, fn, t): i for i, t in enumerate(tasks)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    if progress:
                        progress(sizes[i])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)     # Ctrl-C or a failed task: stop now
            raise
        pool.shutdown(wait=True)
        return results


def _ray_call(fn: Callable[[Any, T], R], shared: Any, task: T) -> R:
    return fn(shared, task)


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("the ray executor needs Ray, an optional extra", path="--executor", value="ray",
                             accepted="pip install -e '.[ray]' (or pip install 'ray>=2.9'); or --executor "
                                      "serial / process") from None
        self.ray = ray
        self.workers = workers
        self.address = address or os.environ.get("RAY_ADDRESS") or None

    def _connect(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": "ERROR"}
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=self.workers, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot start or reach Ray: {exc}", path="--address",
                             value=self.address or "(a local Ray)") from None

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], sizes: Sequence[int],
            progress: Progress | None = None) -> list[Any]:
        ray = self.ray
        self._connect()
        remote = ray.remote(num_cpus=1)(_ray_call)
        shared_ref = ray.put(shared)        # once: every task reads the same object
        pending = {remote.remote(fn, shared_ref, t): i for i, t in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    results[i] = ray.get(ref)
                    if progress:
                        progress(sizes[i])
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise
        return results


def default_executor(workers: int) -> str:
    """The executor when none is named: process with several workers, else serial."""
    return "process" if workers > 1 else "serial"


def get_executor(name: str, workers: int = 1, address: str | None = None) -> Executor:
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    if name == "ray":
        return RayExecutor(workers, address)
    raise InputError("unknown executor", path="--executor", value=name, accepted=", ".join(EXECUTORS))
