"""NVFP4 weight reads (docs/validation.md, 'NVFP4 weight reads'): the dense GEMMs that read
NVFP4 weights stream them at ``fp4_dense_read_efficiency`` of the bandwidth other weights
reach; the routed experts, the 16-bit LM head and every other scheme are untouched, and so is
memory. By hand, in bytes and seconds."""

from __future__ import annotations

import numpy as np
import pytest

from planner.catalog.store import Catalog
from planner.physics.options import PRESETS
from planner.physics.perf import evaluate
from planner.physics.space import Configs, GpuTable
from planner.physics.step import step_physics

CAT = Catalog.default()
O = PRESETS["realistic"]
B200_BW = 8.0e12              # the catalog's B200 HBM bandwidth, bytes/s


def _phys(model: str, scheme: str, eta: float, tp: int = 1, ep: int = 1):
    o = O.model_copy(update={"fp4_dense_read_efficiency": eta})
    table = GpuTable.build([CAT.gpus["b200"]])
    c = Configs.single(0, scheme, "fp8", tp, 1, ep, 64, 1024, 1024)
    return step_physics(CAT.model(model), table, c, o), evaluate(CAT.model(model), table, c, o)


def test_llama_70b_nvfp4_weights_read_at_the_fitted_share_of_the_bandwidth() -> None:
    """Llama-3.1-70B: 80 layers of q 8192 x 8192, k and v 8192 x 1024 each, o 8192 x 8192 and
    an MLP of 3 x 8192 x 28672 = 855,638,016 weights a layer, 68.45e9 in all (norms aside), at
    4.5 bits = 38.50 GB; the LM head 128,256 x 8192 at 16 bits = 2.10 GB. One TP-1 decode step
    on a B200 reads them at 0.8 x 8.0e12 B/s: 6.34 ms. At 0.65 the layers' 38.50 GB count as
    38.50 / 0.65 = 59.24 GB: 20.73 GB more, 3.240 ms more, the head's time unchanged."""
    layers = 80 * (8192 * 8192 * 2 + 2 * 8192 * 1024 + 3 * 8192 * 28672) * 4.5 / 8
    head = 128256 * 8192 * 2
    bw = B200_BW * O.memory_bandwidth_efficiency
    ph1, ev1 = _phys("llama-3.1-70b", "fp4", 1.0)
    ph, ev = _phys("llama-3.1-70b", "fp4", 0.65)
    t1, t = float(ph1.weights_time(np.array([1.0]))[0]), float(ph.weights_time(np.array([1.0]))[0])
    assert t1 == pytest.approx((layers + head) / bw, rel=1e-4)
    assert t == pytest.approx((layers / 0.65 + head) / bw, rel=1e-4)
    assert t - t1 == pytest.approx(20.73e9 / 6.4e12, rel=1e-3)
    # memory holds 4.5-bit weights whatever the reads' rate: same capacity, same batch limit
    assert float(ev.weights_bytes[0]) == float(ev1.weights_bytes[0])
    assert float(ev.max_batch[0]) == float(ev1.max_batch[0])
    assert float(ev.tpot[0]) > float(ev1.tpot[0])


def test_only_nvfp4_dense_weights_move() -> None:
    """FP8 weights do not move; a MoE model's NVFP4 routed experts do not either: the step of
    DeepSeek-R1 at EP 8 moves by its dense (attention, shared-expert, dense-layer) bytes
    alone, the same at 1 token and at 64 (where more experts are touched)."""
    a, _ = _phys("llama-3.1-70b", "w8a8-fp8", 1.0)
    b, _ = _phys("llama-3.1-70b", "w8a8-fp8", 0.65)
    assert float(a.weights_time(np.array([1.0]))[0]) == float(b.weights_time(np.array([1.0]))[0])
    d1, _ = _phys("deepseek-r1", "fp4", 1.0, tp=8, ep=8)
    d, _ = _phys("deepseek-r1", "fp4", 0.65, tp=8, ep=8)
    few, many = np.array([1.0]), np.array([64.0])
    moved_few = float(d.weights_time(few)[0] - d1.weights_time(few)[0])
    moved_many = float(d.weights_time(many)[0] - d1.weights_time(many)[0])
    assert moved_few > 0 and moved_many == pytest.approx(moved_few, rel=1e-9)
    # seed articles read every weight at the full rate
    assert PRESETS["seed-article"].fp4_dense_read_efficiency == 1.0
