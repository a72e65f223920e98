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
