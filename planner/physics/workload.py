"""The request shape the load model serves and what its prompt costs (docs/load.md sections 1b,
3 and 4): ``Workload`` (lengths, their spread, arrivals, the prefix cache's share), a prompt's
computed and cached tokens, its attention per computed token, the spread of its prefill time, and
its TTFT on an idle replica. Split from planner/physics/load.py, which re-exports every name."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from planner.physics.step import StepPhysics, step_time, take_rows

CLIENT_STARTS: tuple[str, ...] = ("independent", "together")
"""How the N clients of a closed loop start (docs/load.md section 5): 'independent', out of
step with each other (the steady state of a long run: what a fleet of users does); 'together',
all N at t = 0 and each sending its next request when the last completes, every request of the
run measured (what ``vllm bench serve --max-concurrency N``, AIPerf ``--concurrency N`` and
InferenceX run): the first wave of N prompts queues for prefill."""


@dataclass(frozen=True)
class Workload:
    """Request shape per configuration (broadcastable arrays). ``arrival_cv2``: squared
    coefficient of variation of inter-arrival times (1 Poisson, > 1 bursty Gamma);
    ``isl_cv2``: squared CV of prompt lengths (0 fixed), ``osl_cv2`` of output lengths. For a
    closed loop (``load_metrics`` with ``clients``): ``start``, one of ``CLIENT_STARTS``, and
    ``requests_per_client``, the length of a run whose clients start together, in requests per
    client (InferenceX sends 10 N prompts, AIPerf's generated benchmark 20 N): the share of
    the run that is the first wave. Clients that start together with fixed lengths (both CV^2
    0) stay in step: their prompts come back in clumps every cycle (on a prefill-first engine,
    every prompt of the lane: ``_in_step``)."""

    isl: np.ndarray | float
    osl: np.ndarray | float
    arrival_cv2: np.ndarray | float = 1.0
    isl_cv2: np.ndarray | float = 0.0
    start: str = "independent"
    requests_per_client: np.ndarray | float = 10.0
    osl_cv2: np.ndarray | float = 0.0
    cached: np.ndarray | float = 0.0
    isl_m3: np.ndarray | float = 0.0
    isl_m4: np.ndarray | float = 0.0

    # ``cached``: mean prompt tokens per request the prefix cache serves (part of ``isl``, at
    # most isl - 1): they skip prefill (GEMMs, and attention as query tokens) but hold KV and are
    # read by the attention of the prompt's computed part and of decode (section 1b).
    # ``isl_m3``, ``isl_m4``: E[S^3] / E[S]^3 and E[S^4] / E[S]^4 of the prompt lengths (0: not
    # given, the backlog takes the token CV^2 as its service CV^2), for ``prefill_work_cv2``

    def __post_init__(self):
        if self.start not in CLIENT_STARTS:
            raise ValueError(f"unknown client start {self.start!r}: one of {', '.join(CLIENT_STARTS)}")

    def take(self, index: np.ndarray, n: int) -> Workload:
        """The workload of configurations ``index`` of ``n`` (per-configuration arrays indexed)."""
        return Workload(*(take_rows(getattr(self, f.name), index, n) for f in fields(self)))


def attention_length(S, P, isl_cv2=0.0):
    """Sections 1b and 3: attention units per computed prompt token of a chunk, S (1 + CV^2)
    + 2 P. A prompt's chunks sum to S^2 + 2 S P units, so over a mix of prompts the tokens in
    the steps carry E[S^2] / E[S] = S (1 + CV^2) on average (a token is more often one of a
    long prompt): attention grows with the square of the length, and the mean prompt alone
    undercounts it by 1 + CV^2 (docs/load.md section 3, 'uneven prompts'). Fixed lengths
    (CV^2 0): S + 2 P, the same floating-point number as before."""
    return S * (1.0 + isl_cv2) + 2.0 * P


def prefill_work_cv2(phys: StepPhysics, n, ctx, c, S, P, wl: Workload, shape) -> np.ndarray:
    """Section 4: the squared CV of a prompt's prefill time, the backlog's service CV^2. A
    prompt of s computed tokens costs w(s) = a s + b s (s + 2P): a per token (the step's slope
    in its prompt tokens, attention aside) and b per attention unit (its slope in them), both
    taken at a chunk of c tokens beside the n decoders. With r_k = E[S^k] / E[S]^k:
    E[w] = a' S + b S^2 r_2, E[w^2] = a'^2 S^2 r_2 + 2 a' b S^3 r_3 + b^2 S^4 r_4 (a' = a + 2bP),
    CV^2 = E[w^2] / E[w]^2 - 1. Attention makes a long prompt's time grow faster than its
    tokens: the Mooncake conversation sample's prompt CV^2 is 1.60, its prefill time's 3.4.
    Where the moments are not given (``isl_m3`` 0) or the lengths are fixed: the token CV^2."""
    cv2 = np.broadcast_to(np.asarray(wl.isl_cv2, dtype=float), shape)
    r3 = np.broadcast_to(np.asarray(wl.isl_m3, dtype=float), shape)
    r4 = np.broadcast_to(np.asarray(wl.isl_m4, dtype=float), shape)
    use = (cv2 > 0.0) & (r3 > 0.0)
    if not np.any(use):
        return cv2
    A = attention_length(S, P, cv2)
    t_c = step_time(phys, n, ctx, c, c * A, c / S)
    t_lin = step_time(phys, n, ctx, c, 0.0, c / S)
    t_0 = step_time(phys, n, ctx, 0.0, 0.0, 0.0)
    a = np.maximum(t_lin - t_0, 0.0) / np.maximum(c, 1e-9)
    b = np.maximum(t_c - t_lin, 0.0) / np.maximum(c * A, 1e-9)
    a1 = a + 2.0 * b * P
    r2 = 1.0 + cv2
    mean = a1 * S + b * S * S * r2
    second = a1 * a1 * S * S * r2 + 2.0 * a1 * b * S ** 3 * r3 + b * b * S ** 4 * r4
    work = second / np.maximum(mean * mean, 1e-300) - 1.0
    return np.where(use & (mean > 0.0), np.maximum(work, 0.0), cv2)


def prompt_split(wl: Workload, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Section 1b: (computed, cached) prompt tokens per request for ``n`` configurations. The
    load model's S is the computed part; the context a sequence holds is S + P."""
    isl = np.broadcast_to(np.asarray(wl.isl, dtype=float), (n,))
    P = np.broadcast_to(np.asarray(wl.cached, dtype=float), (n,))
    return isl - P, P


def idle_ttft(phys: StepPhysics, wl: Workload, whole) -> np.ndarray:
    """Section 1b: the TTFT of one prompt on an idle replica with a prefix cache, from ``whole``,
    the idle TTFT of the whole prompt (perf.py's): less the prompt step the cache saves, the
    isl tokens' (isl^2 attention units) against the S computed ones' (S (S + 2P)), the prompt
    step the load model's TTFT takes. At P = 0 it is ``whole`` exactly."""
    S, P = prompt_split(wl, len(phys))
    isl = S + P
    saved = step_time(phys, 0.0, 0.0, isl, isl * isl, 1.0) - step_time(phys, 0.0, 0.0, S, S * (S + 2.0 * P), 1.0)
    return np.asarray(whole, dtype=float) - np.where(P > 0.0, saved, 0.0)
