"""Invariants of the physics over generated configurations (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.quant import SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES, Configs, GpuTable

CAT = Catalog.default()
TABLE = GpuTable.build([g for g in CAT.gpus.values() if g.peak_dense_flops_per_s])
MODELS = sorted(CAT.models)
OPTIONS = st.sampled_from(sorted(PRESETS))

config = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS),
    "gpu": st.integers(0, len(TABLE.gpus) - 1),
    "scheme": st.sampled_from(["w16a16", "w8a16", "w4a16"]),
    "kv": st.integers(0, len(KV_NAMES) - 1),
    "tp": st.sampled_from([1, 2, 4, 8]),
    "pp": st.sampled_from([1, 2, 4]),
    "batch": st.integers(1, 512),
    "input": st.integers(1, 8192),
    "output": st.integers(1, 2048),
    "preset": OPTIONS,
})


def ev(c, **over):
    c = c | over
    cfg = Configs.grid([c["gpu"]], [SCHEME_NAMES.index(c["scheme"])], [c["kv"]], [c["tp"]], [c["pp"]], [1],
                       np.atleast_1d(c["batch"]), np.atleast_1d(c["input"]), np.atleast_1d(c["output"]))
    return evaluate(CAT.model(c["model"]), TABLE, cfg, PRESETS[c["preset"]])


@settings(max_examples=150, deadline=None)
@given(config, st.integers(1, 512))
def test_step_time_non_decreasing_in_batch(c, extra):
    e = ev(c, batch=[c["batch"], c["batch"] + extra])
    assert e.tpot[1] >= e.tpot[0] * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(config, st.integers(1, 8192), st.integers(1, 2048))
def test_step_time_non_decreasing_in_context(c, more_in, more_out):
    e1 = ev(c)
    e2 = ev(c, input=c["input"] + more_in, output=c["output"] + more_out)
    assert e2.tpot[0] >= e1.tpot[0] * (1 - 1e-12)
    assert e2.ttft[0] >= e1.ttft[0] * (1 - 1e-12)


@settings(max_examples=150, deadline=None)
@given(config)
def test_weight_memory_non_increasing_in_tp_and_pp(c):
    base = ev(c, tp=1, pp=1).weights_bytes[0]
    for tp, pp in ((2, 1), (1, 2), (2, 2), (4, 2), (8, 4)):
        w = ev(c, tp=tp, pp=pp).weights_bytes[0]
        smaller = ev(c, tp=max(tp // 2, 1), pp=pp).weights_bytes[0]
        assert w <= base * (1 + 1e-12) and w <= smaller * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(config, st.sampled_from(list(SCHEMES)), st.sampled_from(list(SCHEMES)))
def test_lower_precision_never_needs_more_memory(c, s1, s2):
    # lower precision: no more bits on the dense weights and none more on the routed experts
    # (mxfp4-experts has 16-bit dense weights and 4.25-bit experts: neither above nor below fp8)
    lo, hi = sorted((s1, s2), key=lambda s: (SCHEMES[s].bits_per_weight, SCHEMES[s].expert_bits))
    if SCHEMES[lo].expert_bits <= SCHEMES[hi].expert_bits:
        a, b = ev(c, scheme=lo), ev(c, scheme=hi)
        assert a.total_bytes[0] <= b.total_bytes[0] * (1 + 1e-12)
    kv8 = ev(c, kv=KV_NAMES.index("fp8")).total_bytes[0]
    kv16 = ev(c, kv=KV_NAMES.index("bf16")).total_bytes[0]
    assert kv8 <= kv16
