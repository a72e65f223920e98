"""Where a sweep's tasks run: one interface, three executors (docs/whatif.md).

An executor runs ``fn(shared, task)`` for every task and returns the results in task order,
whatever order they finished in, so every executor gives the same output. ``shared`` (the
resolved catalog and the base spec) is sent to each worker once: as the process pool's
initializer argument, or one ``ray.put`` object; tasks carry only their scenarios.

- ``serial``: in this process.
- ``process``: a ``concurrent.futures.ProcessPoolExecutor`` of N - 1 workers (spawned, so a
  worker never inherits solver or Ray threads from the parent), this process the N-th.
- ``ray``: Ray tasks on a local Ray (started with N - 1 CPUs when none is running) or the
  cluster at ``address`` (``RAY_ADDRESS`` when not given), this process helping. Ray is an
  optional extra: ``pip install -e .[ray]``; without it the executor is an input error (exit 2).

Parallel is never slower than serial (issue 26 item 5): this process runs tasks itself, from
the last one back, while the workers take them from the first one on, a few at a time
(``share``), so it never waits while a task is left. Workers start only after this process
has run tasks alone for ``MEASURE_S`` (a sweep done by then starts none), and only where a
CPU was idle meanwhile (``MIN_IDLE_CPU``) and this process had most of one
(``MIN_CPU_SHARE``): on CPUs busy with other work a worker only takes CPU from this process
(its start-up, its own physics cache). The sweep's summary line says when none started. A Ray
cluster at an address is not judged. Ray's workers read the shared object once each
(``_ray_call``), not once a task.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
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
    note: str | None            # what the last run did otherwise than its name says (workers stopped)

    def run(self, fn: Callable[[Any, T], R], shared: Any, tasks: Sequence[T], sizes: Sequence[int],
            progress: Progress | None = None) -> list[R]:
        """``[fn(shared, t) for t in tasks]``, computed wherever the executor runs them."""
        ...


class SerialExecutor:
    name = "serial"
    workers = 1
    note: str | None = None

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
    # a worker starts with Ctrl-C blocked (_ctrl_c_held): from here on it ends at once and quietly,
    # no KeyboardInterrupt traceback (one that came while it was importing included); the parent
    # reports the interruption
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _SHARED = shared


def _call(fn: Callable[[Any, T], R], task: T) -> R:
    return fn(_SHARED, task)


class _ctrl_c_held:
    """While the pool spawns its workers: SIGINT blocked in this thread, a mask a spawned process
    inherits, so that a worker still importing when Ctrl-C arrives prints no traceback (_init
    restores the default action, then unblocks it: a Ctrl-C that came meanwhile ends the worker
    quietly). In this process the Ctrl-C is held, not lost: one that arrives meanwhile (here, or
    in another thread, which runs this process's handler in the main thread) is recorded and
    raised again once the block ends, where the previous handler takes it (KeyboardInterrupt).
    Ignoring SIGINT instead would pass the mask on as well but drop a Ctrl-C that lands while a
    worker is started, the sweep then running to the end and exiting 0."""

    def __enter__(self) -> None:
        self.main = threading.current_thread() is threading.main_thread()    # signals: main thread only
        if self.main:
            self.held = False
            self.previous = signal.signal(signal.SIGINT, self._hold)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def _hold(self, signum: int, frame: object) -> None:
        self.held = True

    def __exit__(self, *exc: object) -> None:
        if self.main:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})     # one pending is taken here
            signal.signal(signal.SIGINT, signal.SIG_DFL if self.previous is None else self.previous)
            if self.held:
                signal.raise_signal(signal.SIGINT)


IN_FLIGHT = 2
"""Tasks handed to each worker ahead of its finishing one: enough to keep it busy, few enough
that this process still has tasks of its own to run while they work."""


MIN_CPU_SHARE = 0.8
"""The share of one CPU this process must get over its first tasks for workers to be started
(``share``): less, and the CPUs are taken by other work (other processes, or a scheduler that
gives this process's group a fixed share: Linux's autogroups), where a worker only takes CPU
from this process (its start-up, its own physics cache, a task both run at the end) and
parallel is slower than serial: 0.68-0.88x measured on the shared 2-core development machine
at load 6-11 with workers started at once (benchmarks/sweep_executors.py)."""
MIN_IDLE_CPU = 0.8
"""CPUs that must have been idle, on average, over this process's first tasks for workers to be
started (where the system reports it: Linux's /proc/stat): a worker needs a CPU of its own.
With this process getting its CPU but the others busy, workers started at once made the shipped
sweeps 0.63x and 0.76x of serial at load 2.6-3.8 (benchmarks/sweep_executors.py at 43e6e39)."""
MEASURE_S = 0.5
"""Wall seconds of tasks this process runs alone before it judges its share of a CPU: a sweep
done sooner never starts a worker."""


def _meter() -> tuple[float, float, float | None]:
    """(wall seconds, CPU seconds of this process and of its children that ended (a CBC solve),
    idle CPU seconds of the whole machine since boot, None where the system does not say)."""
    try:
        import resource
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = ch.ru_utime + ch.ru_stime
    except ImportError:         # not POSIX
        children = 0.0
    idle: float | None = None
    try:
        with open("/proc/stat") as f:
            ticks = f.readline().split()[1:]          # user nice system idle iowait ...
        idle = (int(ticks[3]) + int(ticks[4])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return time.perf_counter(), time.process_time() + children, idle


def share(run_here: Callable[[int], Any], submit: Callable[[int], Any], collect: Callable[[], list],
          n: int, in_flight: int, sizes: Sequence[int], progress: Progress | None,
          decline: Callable[[str], None] | None = None,
          meter: Callable[[], tuple[float, float, float | None]] = _meter
          ) -> list[Any]:
    """Results of tasks 0 .. n - 1 in task order, the work shared between this process and the
    workers: ``submit(i)`` hands task i to a worker (from the first on, at most ``in_flight``
    unfinished at a time), ``collect()`` returns [(i, result)] of tasks the workers finished
    since, and ``run_here(i)`` runs task i in this process: from the last one back, then, once
    every task is handed out, the unfinished ones a worker holds (the last handed first),
    whichever finishes first giving the result (they are the same). So this process never waits
    while a task is unfinished, and the whole takes no longer than running every task here, but
    for the CPU the workers take from it.

    With ``decline`` (workers that would share this machine's CPUs), no task is handed out
    before this process has run tasks alone for ``MEASURE_S``: then, if it got less than
    ``MIN_CPU_SHARE`` of a CPU, or less than ``MIN_IDLE_CPU`` CPUs were idle (``meter``), the
    CPUs are busy and workers could only share this process's: ``decline(reason)`` is called
    and every task runs here (so does a sweep done before the judgement); else the workers
    start (``submit`` starts them)."""
    results: list[Any] = [None] * n
    done = [False] * n
    handed: list[int] = []          # handed to a worker, not finished
    wall0, cpu0, idle0 = meter()
    judged = decline is None

    def finish(i: int, r: Any) -> None:
        if not done[i]:
            done[i] = True
            results[i] = r
            if progress:
                progress(sizes[i])

    front, back = 0, n
    while front < back or handed:
        while judged and front < back and len(handed) < in_flight:
            submit(front)
            handed.append(front)
            front += 1
        for i, r in collect():
            finish(i, r)
        handed = [i for i in handed if not done[i]]
        if front < back:
            back -= 1
            finish(back, run_here(back))
        elif handed:
            i = handed.pop()
            finish(i, run_here(i))
        if not judged and front < back:
            wall, cpu, idle = meter()
            if wall - wall0 >= MEASURE_S:
                judged = True
                got = (cpu - cpu0) / (wall - wall0)
                spare = None if idle is None or idle0 is None else (idle - idle0) / (wall - wall0)
                if (got < MIN_CPU_SHARE or (spare is not None and spare < MIN_IDLE_CPU)) and decline is not None:
                    decline(f"no worker started: over its first tasks this process got {got:.2f} of a CPU "
                            f"(at least {MIN_CPU_SHARE} needed) and {'?' if spare is None else f'{spare:.2f}'} "
                            f"CPUs were idle (at least {MIN_IDLE_CPU}): the CPUs are busy")
                    in_flight = 0
    if not judged and decline is not None:
        decline(f"no worker started: every task ran here within {MEASURE_S} s")
    return results


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int, always: bool = False) -> None:
        self.workers = workers
        self.always = always            # start the workers whatever this process's share of a CPU (tests)
        self.note: str | None = None

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], sizes: Sequence[int],
            progress: Progress | None = None) -> list[Any]:
        if self.workers <= 1 or len(tasks) <= 1:
            return SerialExecutor().run(fn, shared, tasks, sizes, progress)
        helpers = self.workers - 1          # and this process
        pools: list[ProcessPoolExecutor] = []       # started by the first task handed out
        pending: dict[Any, int] = {}

        def submit(i: int) -> None:
            with _ctrl_c_held():
                if not pools:
                    pools.append(ProcessPoolExecutor(max_workers=helpers, mp_context=multiprocessing.get_context(
                        "spawn"), initializer=_init, initargs=(shared,)))
                pending[pools[0].submit(_call, fn, tasks[i])] = i

        def collect() -> list[tuple[int, Any]]:
            done, _ = wait(pending, timeout=0, return_when=FIRST_COMPLETED)
            return [(pending.pop(fut), fut.result()) for fut in done]

        self.note = None
        try:
            results = share(lambda i: fn(shared, tasks[i]), submit, collect, len(tasks), IN_FLIGHT * helpers,
                            sizes, progress, None if self.always else self._decline)
        except BaseException:
            for pool in pools:
                _stop(pool)             # Ctrl-C or a failed task: stop now
            raise
        for pool in pools:
            if pending:                 # tasks this process ran too, still running in a worker
                _stop(pool)
            else:
                pool.shutdown(wait=True)
        return results

    def _decline(self, reason: str) -> None:
        self.note = reason


def _stop(pool: ProcessPoolExecutor) -> None:
    """Shut the pool down now: queued tasks cancelled, the workers still running one ended."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.terminate()


_RAY_SHARED: dict[str, Any] = {}


def _ray_call(fn: Callable[[Any, T], R], box: list, task: T) -> R:
    """A Ray task: ``box`` holds the shared object's reference (in a list, so that Ray does not
    fetch and unpickle it for every task), read once per worker."""
    import ray

    ref = box[0]
    if ref.hex() not in _RAY_SHARED:
        _RAY_SHARED.clear()
        _RAY_SHARED[ref.hex()] = ray.get(ref)
    return fn(_RAY_SHARED[ref.hex()], task)


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int, address: str | None = None, always: bool = False) -> None:
        try:
            import ray
        except ImportError:
            raise InputError("the ray executor needs Ray, an optional extra", path="--executor", value="ray",
                             accepted="pip install -e '.[ray]' (or pip install 'ray>=2.9'); or --executor "
                                      "serial / process") from None
        self.ray = ray
        self.workers = workers
        self.always = always            # start the workers whatever this process's share of a CPU (tests)
        self.note: str | None = None
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
                ray.init(num_cpus=max(1, self.workers - 1), **kwargs)     # this process is the last worker
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot start or reach Ray: {exc}", path="--address",
                             value=self.address or "(a local Ray)") from None

    def _decline(self, reason: str) -> None:
        self.note = reason

    def run(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any], sizes: Sequence[int],
            progress: Progress | None = None) -> list[Any]:
        ray = self.ray
        if len(tasks) <= 1:
            return SerialExecutor().run(fn, shared, tasks, sizes, progress)
        pending: dict[Any, int] = {}
        started: list[Any] = []             # [the remote function, the shared object's box]: the first task handed

        def submit(i: int) -> None:
            if not started:
                self._connect()
                started[:] = [ray.remote(num_cpus=1)(_ray_call), [ray.put(shared)]]    # once: every task reads it
            remote, box = started
            pending[remote.remote(fn, box, tasks[i])] = i

        def collect() -> list[tuple[int, Any]]:
            if not pending:
                return []
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            return [(pending.pop(ref), ray.get(ref)) for ref in done]

        self.note = None
        decline = None if self.address or self.always else self._decline    # a cluster's CPUs are its own
        if decline is None:
            self._connect()
        # the tasks in flight: twice the cluster's CPUs, or, for a local Ray not started yet, the
        # CPUs it will be started with (_connect)
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else self.workers - 1
        try:
            return share(lambda i: fn(shared, tasks[i]), submit, collect, len(tasks), IN_FLIGHT * max(1, cpus),
                         sizes, progress, decline)
        finally:                        # Ctrl-C, a failed task, or tasks this process ran too
            for ref in pending:
                ray.cancel(ref, force=True)


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
