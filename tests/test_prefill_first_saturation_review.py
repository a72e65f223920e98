"""Review of the prefill-first saturation and the steady state's second search (issue 22,
docs/load.md section 3, 'prefill first at saturation' and 'a fixed point past a slower step').

Qwen3-32B FP8 on 4 H100 (SGLang's profile), 1,024 / 1,024 tokens, 512 slots: the first search
of ``_steady`` can land on a fixed point past the slots (n > M, an eager step no admitted batch
reaches) at rates just below the saturation (from 0.975 of it here), where a fixed point with
n < M exists; the closed loop then stopped at 0.97 of the saturation and, with more clients than
slots, lost some of them (600 clients: rate x e2e = 536; tests/test_prefill_first_saturation.py,
test_a_closed_loop_holds_all_its_clients)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics import load as L
from planner.physics.options import PRESETS
from planner.physics.space import Configs, GpuTable

CAT = Catalog.default()
SGLANG = PRESETS["sglang"]


def _qwen(S=1024.0, Osl=1024.0, slots=512, budget=None):
    t = GpuTable.build([CAT.gpus["h100-sxm"]])
    c = Configs.single(0, "w8a8-fp8", "fp8", 4, 1, 1, slots, S, Osl)
    ph = L.step_physics(CAT.model("qwen3-32b"), t, c, SGLANG)
    return ph, L.engine(ph, token_budget=budget)


@pytest.mark.parametrize("f", [0.975, 0.99, 0.999])
def test_the_fixed_point_below_the_slots_is_found_near_saturation(f):
    """Below the saturation the steady state runs fewer than M sequences, stable (n = M exactly
    at the saturation, whose step is the steady state's own there)."""
    ph, eng = _qwen()
    S, O = np.array([1024.0]), np.array([1024.0])
    sat, _ = L._saturation(ph, eng, S, O)
    st = L._steady(ph, eng, sat * f, S, O)
    assert bool(st["converged"][0])
    assert float(st["n"][0]) <= float(eng.max_seqs[0])
    r = L._open(ph, eng, L.Workload(isl=1024.0, osl=1024.0), sat * f, S, O, closed=None, quantiles=False)
    assert bool(r.stable[0])


def test_no_fixed_point_past_saturation_keeps_the_first_search():
    """Above the saturation there is no fixed point below the slots (F(tau_M) is the saturated
    step, above tau_M): the second search finds none and the row keeps the first search's end,
    4 x the saturated step, flagged not converged."""
    ph, eng = _qwen()
    S, O = np.array([1024.0]), np.array([1024.0])
    sat, tau_sat = L._saturation(ph, eng, S, O)
    st = L._steady(ph, eng, sat * 1.5, S, O, tau_sat)
    assert not bool(st["converged"][0])
    lo = float(L.step_time(ph, 0.0, 0.0, 0.0, 0.0, 0.0)[0]) * 0.5
    assert float(st["tau"][0]) == 4.0 * max(float(tau_sat[0]), 4.0 * lo)


def test_prompt_steps_that_cannot_keep_up_leave_the_full_step():
    """32,768-token prompts in chunks of 8,192 (k = 4 prompt steps each) at a = n / (O - 1) = 0.5
    arrivals a step: q = a S / c = 0.5 x 32,768 / 8,192 = 2 prompt steps a decode step, more than
    one: the prefill-first mean step is not defined (+inf) and the full step is the bound."""
    ph, eng = _qwen(S=32768.0, Osl=257.0, slots=128)
    S, O, T = np.array([32768.0]), np.array([257.0]), eng.token_budget
    n = np.array([128.0])                        # a = 128 / 256 = 0.5
    A = L.attention_length(S, 0.0, 0.0)
    assert np.isinf(L._prefill_first_full(ph, n, S, O, 0.0, A, T)[0])
