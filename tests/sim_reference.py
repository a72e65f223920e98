"""A straightforward per-step reference of the simulator (planner/simulate.py), kept in tests/
and not in the package: the step-by-step loop the event simulator replaced (one Python
iteration per engine step, every step's time from the step function). tests/test_simulate_events.py
checks the event simulator against it on small cases."""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from planner.simulate import Arrivals, Lengths, SimResult, StepFn, _summarise, step_bound


def reference(step: StepFn, arrivals: Arrivals, isl: Lengths, osl: Lengths, *, token_budget: int,
             max_seqs: int, kv_pool_tokens: float = float("inf"), n_requests: int = 5000,
             warmup: float = 0.1, seed: int = 0,
             targets: Sequence[tuple[str, str, float]] = (), transfer_s: float = 0.0,
             speculative_tokens: int = 0, speculative_acceptance: float = 1.0, serving_s: float = 0.0,
             prefill_first: bool = False, max_steps: float | None = None,
             deadline: float | None = None) -> SimResult:
    """``planner.simulate.simulate`` one step at a time, as it was before issue 26 item 3: the same
    arguments (but ``deadline``) and the same result."""
    if arrivals.kind == "closed" and arrivals.start == "together":
        assert arrivals.clients is not None
        n_requests = max(int(round(arrivals.requests_per_client * arrivals.clients)), int(arrivals.clients))
        warmup = 0.0                  # a benchmark run: every request measured, the first wave included
    elif arrivals.kind == "closed" and arrivals.start != "independent":
        raise ValueError(f"unknown client start {arrivals.start!r}")
    rng = np.random.default_rng(seed)
    S = isl.sample(rng, n_requests)
    O = osl.sample(rng, n_requests)
    if np.any(S < 1) or np.any(O < 1):
        raise ValueError("lengths must be at least 1")
    T = int(token_budget)
    if max_steps is not None and step_bound(S, O, T) > max_steps:
        raise ValueError("past the step cap")
    cap = int(max_seqs)
    spec = int(speculative_tokens)
    q = spec + 1                      # budget tokens per decode sequence
    if spec > 0 and not 0.0 < speculative_acceptance <= 1.0:
        raise ValueError("speculative_acceptance must be in (0, 1]")
    left: dict[int, int] = {}         # speculative decoding: tokens still to emit, per decoding request
    if cap < 1 or np.any(S + O > kv_pool_tokens):
        raise ValueError("no sequence fits: max_seqs < 1 or a request exceeds the KV pool")
    arr = np.full(n_requests, np.inf)
    closed = arrivals.kind == "closed"
    think = float(arrivals.think_s)
    if closed:
        assert arrivals.clients is not None
        n_clients = min(int(arrivals.clients), n_requests)
        if arrivals.start == "together":
            arr[:n_clients] = 0.0
        else:
            # out of step: each client's first request at a uniform time within a cycle of the
            # loaded engine as the step physics bounds it from below: every client's prompt in
            # full chunks, then O - 1 decode steps of all the clients the slots hold
            s_bar, o_bar = float(np.mean(S)), float(np.mean(O))
            n_run = min(n_clients, cap)
            chunk = float(min(T, max(1, int(s_bar))))
            full = step(0, 0.0, int(chunk), chunk * s_bar, max(1, int(chunk // s_bar)))
            span = (math.ceil(n_clients * s_bar / T) * full
                    + max(o_bar - 1.0, 0.0) * step(n_run, n_run * (s_bar + o_bar / 2.0)))
            arr[:n_clients] = np.sort(rng.uniform(0.0, span, n_clients))
        issued = n_clients
        # the serving path of a closed loop's request varies a little (network, tokenizer): uniform
        # on [0.9, 1.1] x its mean, from a generator of its own (the lengths and arrivals are the
        # same for any mean)
        srv = (serving_s * np.random.default_rng(seed + 1).uniform(0.9, 1.1, n_requests)).tolist()
        pend = [(float(arr[i]) + srv[i], i) for i in range(n_clients)]   # (time at the engine, rid) not yet queued
        heapq.heapify(pend)
    else:
        assert arrivals.rate is not None
        if arrivals.kind == "poisson":
            gaps = rng.exponential(1.0 / arrivals.rate, n_requests)
        elif arrivals.kind == "gamma":
            k = 1.0 / arrivals.cv ** 2
            gaps = rng.gamma(k, 1.0 / (arrivals.rate * k), n_requests)
        else:
            raise ValueError(f"unknown arrival process {arrivals.kind!r}")
        arr = np.cumsum(gaps)
        issued = n_requests
        pend = []
    arr_l = arr.tolist()
    S_l, O_l = S.tolist(), O.tolist()
    first = [0.0] * n_requests
    fin = [0.0] * n_requests
    step_dt: list[float] = []
    step_n: list[int] = []
    step_end: list[float] = []

    waiting: deque[int] = deque()
    prefilling: deque[list[int]] = deque()    # [rid, prompt tokens done]
    heap: list[tuple[int, int]] = []          # (finish step, rid)
    nxt = 0                                   # next open-loop arrival to enqueue
    t = 0.0
    k = 0                                     # decode steps run (the decoders' clock)
    n_dec = 0
    ctx = 0.0
    running = 0
    kv_used = 0
    done = 0
    link_free = 0.0
    while done < n_requests:
        if closed:
            while pend and pend[0][0] <= t:
                waiting.append(heapq.heappop(pend)[1])
        else:
            while nxt < n_requests and arr_l[nxt] + serving_s <= t:
                waiting.append(nxt)
                nxt += 1
        if n_dec == 0 and not prefilling and (not waiting or running >= cap):
            if closed:
                if not pend:
                    raise RuntimeError("simulator stalled")    # cannot happen with valid inputs
                t = max(t, pend[0][0])
                continue
            if nxt >= n_requests:
                raise RuntimeError("simulator stalled")
            t = arr_l[nxt] + serving_s
            continue
        # prefill first: a step of prompts alone while any waits for a slot it can have or is part-done
        pf = prefill_first and bool(prefilling or (waiting and running < cap
                                                   and kv_used + S_l[waiting[0]] + O_l[waiting[0]] <= kv_pool_tokens))
        n_step = 0 if pf else n_dec
        budget = T - n_step * q
        chunk = 0
        att = 0.0
        heads = 0
        completed: list[int] = []
        for item in prefilling:
            if budget <= 0:
                break
            rid, d = item
            take = min(budget, S_l[rid] - d)
            att += take * take + 2.0 * take * d
            chunk += take
            budget -= take
            item[1] = d + take
            if item[1] == S_l[rid]:
                heads += 1
                completed.append(rid)
        while budget > 0 and waiting and running < cap:
            rid = waiting[0]
            need = S_l[rid] + O_l[rid]
            if kv_used + need > kv_pool_tokens:
                break
            waiting.popleft()
            running += 1
            kv_used += need
            take = min(budget, S_l[rid])
            att += take * take
            chunk += take
            budget -= take
            if take == S_l[rid]:
                heads += 1
                completed.append(rid)
            else:
                prefilling.append([rid, take])
        dt = step(n_step, ctx if n_step else 0.0, chunk, att, heads)
        t += dt
        step_dt.append(dt)
        step_n.append(n_step)
        step_end.append(t)
        finished: list[int] = []
        if pf:
            pass                      # the decoders wait: no token, their clock k stands still
        elif spec == 0:
            ctx += n_dec
        elif left:
            rids = list(left)
            if speculative_acceptance >= 1.0:
                runs = [spec] * len(rids)
            else:       # G = (trials to the first rejection) - 1, capped at k
                runs = np.minimum(rng.geometric(1.0 - speculative_acceptance, len(rids)) - 1, spec).tolist()
            for rid, g in zip(rids, runs):
                r = left[rid]
                emit = 1 + g if 1 + g < r else r
                ctx += emit
                if emit == r:
                    del left[rid]
                    finished.append(rid)
                else:
                    left[rid] = r - emit
        while prefilling and prefilling[0][1] == S_l[prefilling[0][0]]:
            prefilling.popleft()
        for rid in completed:
            first[rid] = t
            if O_l[rid] == 1:
                if transfer_s > 0.0:
                    link_free = max(link_free, t) + transfer_s
                    first[rid] = link_free
                fin[rid] = first[rid]
                done += 1
                running -= 1
                kv_used -= S_l[rid] + O_l[rid]
                if closed and issued < n_requests:
                    arr_l[issued] = t + (rng.exponential(think) if think > 0 else 0.0)
                    heapq.heappush(pend, (arr_l[issued] + srv[issued], issued))
                    issued += 1
            else:
                if spec == 0:
                    # its O - 1 tokens come in decode steps k + 1 .. k + O - 1 (a prompt-only step
                    # ran no decode step: the next one, k, is its first)
                    heapq.heappush(heap, (k + O_l[rid] - (2 if pf else 1), rid))
                else:
                    left[rid] = O_l[rid] - 1
                n_dec += 1
                ctx += S_l[rid] + 1
        while not pf and heap and heap[0][0] == k:
            finished.append(heapq.heappop(heap)[1])
        for rid in finished:
            fin[rid] = t
            done += 1
            n_dec -= 1
            running -= 1
            need = S_l[rid] + O_l[rid]
            ctx -= need
            kv_used -= need
            if closed and issued < n_requests:
                arr_l[issued] = t + (rng.exponential(think) if think > 0 else 0.0)
                heapq.heappush(pend, (arr_l[issued] + srv[issued], issued))
                issued += 1
        if not pf:
            k += 1
    return _summarise(np.array(arr_l), np.array(first), np.array(fin), S, O, np.array(step_dt),
                      np.array(step_n, dtype=float), np.array(step_end), warmup, targets)


