"""``executors.share`` (issue 26 item 5): this process runs tasks from the last one back while
workers take them from the first; once every task is handed out it runs the ones a worker
still holds, so it never waits and the whole is never slower than running every task here."""

from __future__ import annotations

from planner.whatif.executors import share


def _run(worker_done_after: int | None, n: int = 7, in_flight: int = 2):
    """A fake worker that finishes a task ``worker_done_after`` collects after it was handed
    (never when None); returns (results, tasks run here, tasks handed, progress sizes)."""
    here: list[int] = []
    handed: dict[int, int] = {}
    sizes = [i + 1 for i in range(n)]
    seen: list[int] = []
    clock = [0]

    def submit(i: int) -> None:
        handed[i] = clock[0]

    def collect() -> list[tuple[int, int]]:
        clock[0] += 1
        if worker_done_after is None:
            return []
        out = [(i, i * i) for i, t in handed.items() if clock[0] - t >= worker_done_after]
        for i, _ in out:
            del handed[i]
        return out

    def run_here(i: int) -> int:
        here.append(i)
        return i * i

    results = share(run_here, submit, collect, n, in_flight, sizes, seen.append)
    return results, here, seen, sizes


def test_results_in_task_order_whoever_ran_them():
    for after in (None, 1, 2, 5):
        results, here, seen, sizes = _run(after)
        assert results == [i * i for i in range(7)]
        assert sorted(seen) == sorted(sizes)            # each task's progress reported once


def test_a_worker_that_never_finishes_costs_nothing_but_its_tasks_run_here():
    results, here, _, _ = _run(None)
    assert sorted(here) == list(range(7)) and here[:5] == [6, 5, 4, 3, 2]


def test_a_quick_worker_takes_tasks_off_this_process():
    _, here, _, _ = _run(1)
    assert len(here) < 7 and here[0] == 6


def _judged(cpu_per_s: float, n: int = 7, idle_per_s: float | None = 1.0):
    """``share`` with a fake meter (each reading 0.3 s later, this process getting ``cpu_per_s``
    of a CPU, ``idle_per_s`` CPUs idle) and a worker that finishes each task at the next collect:
    (tasks run here, tasks handed out, decline reasons)."""
    here: list[int] = []
    handed: list[int] = []
    reasons: list[str] = []
    readings = [0]
    waiting: list[int] = []

    def meter() -> tuple[float, float, float | None]:
        readings[0] += 1
        t = 0.3 * readings[0]
        return t, t * cpu_per_s, None if idle_per_s is None else t * idle_per_s

    def submit(i: int) -> None:
        handed.append(i)
        waiting.append(i)

    def collect() -> list:
        out = [(i, i * i) for i in waiting]
        waiting.clear()
        return out

    def run_here(i: int) -> int:
        here.append(i)
        return i * i

    results = share(run_here, submit, collect, n, 2, [1] * n, None, reasons.append, meter)
    assert results == [i * i for i in range(n)]
    return here, handed, reasons


def test_no_worker_starts_where_this_process_gets_under_most_of_a_cpu():
    """A busy machine: over its first MEASURE_S (two tasks) this process had 0.4 of a CPU, so no
    task is handed out (no worker is started: ``submit`` starts them), the reason given."""
    here, handed, reasons = _judged(0.4)
    assert handed == [] and sorted(here) == list(range(7))
    assert len(reasons) == 1 and "0.40 of a CPU" in reasons[0]


def test_no_worker_starts_where_no_other_cpu_is_idle():
    """This process gets its CPU, but the others are busy (0.3 CPUs idle): a worker would not
    get a CPU of its own."""
    here, handed, reasons = _judged(1.0, idle_per_s=0.3)
    assert handed == [] and sorted(here) == list(range(7)) and "0.30 CPUs were idle" in reasons[0]


def test_workers_start_after_the_first_tasks_where_this_process_gets_a_cpu_and_another_is_idle():
    for idle in (1.0, None):            # None: the system does not say (not Linux)
        here, handed, reasons = _judged(1.0, idle_per_s=idle)
        assert reasons == [] and here[:2] == [6, 5] and handed and len(here) < 7


def test_a_sweep_done_before_the_judgement_starts_no_worker():
    here, handed, reasons = _judged(1.0, n=1)
    assert handed == [] and here == [0] and "no worker started" in reasons[0]
