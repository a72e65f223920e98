"""Configurations as arrays: a struct-of-arrays GPU table and a flat grid of configurations.

The physics evaluates thousands of (GPU, TP, PP, EP, quantization, KV dtype, batch,
lengths) rows in one numpy pass; a single `estimate` is the same code on one row.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.catalog.schema import MATH_FORMATS, Gpu
from planner.physics.quant import KV_DTYPES, SCHEMES

SCHEME_NAMES: tuple[str, ...] = tuple(SCHEMES)
KV_NAMES: tuple[str, ...] = tuple(KV_DTYPES)


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)


@dataclass(frozen=True)
class GpuTable:
    """Per-GPU fields as arrays indexed by position in ``gpus``."""

    gpus: tuple[Gpu, ...]
    flops: np.ndarray            # [gpu, format] dense peak FLOP/s, NaN where absent
    memory: np.ndarray
    bandwidth: np.ndarray
    intra_bw: np.ndarray
    intra_peer_bw: np.ndarray    # NaN unless a full-mesh fabric
    intra_latency: np.ndarray
    domain: np.ndarray           # GPUs in the fast intra-node domain
    per_node: np.ndarray
    inter_bw: np.ndarray
    inter_latency: np.ndarray
    power: np.ndarray            # NaN where unknown
    eff_memory: np.ndarray       # calibration multipliers of the assumptions' efficiencies (1 = none)
    eff_compute: np.ndarray
    eff_prefill: np.ndarray
    mamf_frac: np.ndarray        # [gpu, format] measured MAMF / peak, filled from the GPU's other formats; NaN if none

    @staticmethod
    def build(gpus: Sequence[Gpu],
              efficiency_scale: dict[str, tuple[float, float, float]] | None = None) -> GpuTable:
        """``efficiency_scale``: per GPU id, multipliers of the memory, decode-compute and
        prefill-compute efficiencies (a per-family calibration, planner/calibrate.py)."""
        scale = efficiency_scale or {}
        gs = tuple(gpus)
        peaks = [{str(k): v for k, v in g.peak_dense_flops_per_s.items()} for g in gs]
        flops = np.array([[_nan(p.get(f)) for f in MATH_FORMATS] for p in peaks], dtype=np.float64)
        flops = flops.reshape(len(gs), len(MATH_FORMATS))

        mamf = np.full_like(flops, np.nan)
        for i, g in enumerate(gs):
            known = {str(k): v / flops[i, MATH_FORMATS.index(str(k))] for k, v in g.measured_mamf_flops_per_s.items()
                     if not np.isnan(flops[i, MATH_FORMATS.index(str(k))])}
            for j, f in enumerate(MATH_FORMATS):
                order = (f, "fp16", "bf16", "fp8") if f in ("bf16", "fp16") else (f, "fp8", "bf16", "fp16")
                mamf[i, j] = next((known[x] for x in order if x in known), np.nan)

        def col(fn) -> np.ndarray:
            return np.array([fn(g) for g in gs], dtype=float)

        return GpuTable(
            gpus=gs,
            flops=flops,
            memory=col(lambda g: g.memory_bytes),
            bandwidth=col(lambda g: g.memory_bandwidth_bytes_per_s),
            intra_bw=col(lambda g: g.intra_node.bandwidth_bytes_per_s),
            intra_peer_bw=col(lambda g: _nan(g.intra_node.per_peer_bandwidth_bytes_per_s)),
            intra_latency=col(lambda g: g.intra_node.latency_s),
            domain=col(lambda g: g.domain_gpus),
            per_node=col(lambda g: g.gpus_per_node),
            inter_bw=col(lambda g: g.inter_node.bandwidth_bytes_per_s),
            inter_latency=col(lambda g: g.inter_node.latency_s),
            power=col(lambda g: _nan(g.power_w)),
            eff_memory=col(lambda g: scale.get(g.id, (1.0, 1.0, 1.0))[0]),
            eff_compute=col(lambda g: scale.get(g.id, (1.0, 1.0, 1.0))[1]),
            eff_prefill=col(lambda g: scale.get(g.id, (1.0, 1.0, 1.0))[2]),
            mamf_frac=mamf,
        )

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.gpus)


@dataclass(frozen=True)
class Configs:
    """A flat list of configurations; every field an array of the same length."""

    gpu: np.ndarray        # index into GpuTable
    scheme: np.ndarray     # index into SCHEME_NAMES
    kv: np.ndarray         # index into KV_NAMES
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray
    batch: np.ndarray      # sequences per decode step on one GPU (micro-batch per stage)
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.gpu.shape[0])

    @staticmethod
    def grid(
        gpu: Sequence[int], scheme: Sequence[int], kv: Sequence[int], tp: Sequence[int],
        pp: Sequence[int], ep: Sequence[int], batch: Sequence[float],
        input_tokens: Sequence[float], output_tokens: Sequence[float],
    ) -> Configs:
        """The Cartesian product of the given values, flattened."""
        axes = [np.asarray(a) for a in (gpu, scheme, kv, tp, pp, ep, batch, input_tokens, output_tokens)]
        mesh = np.meshgrid(*axes, indexing="ij")
        flat = [m.reshape(-1) for m in mesh]
        return Configs(
            gpu=flat[0].astype(np.int64), scheme=flat[1].astype(np.int64), kv=flat[2].astype(np.int64),
            tp=flat[3].astype(float), pp=flat[4].astype(float), ep=flat[5].astype(float),
            batch=flat[6].astype(float), input_tokens=flat[7].astype(float), output_tokens=flat[8].astype(float),
        )

    @staticmethod
    def single(gpu: int, scheme: str, kv: str, tp: int, pp: int, ep: int, batch: float,
               input_tokens: float, output_tokens: float) -> Configs:
        return Configs.grid([gpu], [SCHEME_NAMES.index(scheme)], [KV_NAMES.index(kv)], [tp], [pp], [ep],
                            [batch], [input_tokens], [output_tokens])

    def take(self, index: np.ndarray) -> Configs:
        return Configs(**{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


def power_of_two_degrees(limit: int) -> list[int]:
    return [2**i for i in itertools.count() if 2**i <= limit][:32]
