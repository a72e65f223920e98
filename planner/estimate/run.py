"""`planner estimate`: evaluate one fixed configuration and explain where time and memory go."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from planner.catalog.aliases import Checkpoint, scheme_of
from planner.catalog.checkpoints import serving_checkpoint
from planner.catalog.schema import Gpu
from planner.catalog.store import Catalog, ModelSpec
from planner.errors import InputError, MissingDataError
from planner.physics.load import Workload, engine, load_metrics, step_physics
from planner.physics.options import Assumptions
from planner.physics.perf import INVALID_REASONS, evaluate, regime_of, regime_shares
from planner.physics.quant import KV_DTYPES, SCHEMES
from planner.physics.space import Configs, GpuTable
from planner.plan.result import beside, quality_of
from planner.pricing import cost_per_hour, cost_per_million_tokens
from planner.resolve.problem import resolve_estimate
from planner.schemas.estimate import EstimateSpec
from planner.units import MS
from planner.yamlio import Document


@dataclass(frozen=True)
class Estimate:
    """One configuration's physics, with units in every key (JSON-ready via to_dict)."""

    model: str
    gpu: str
    tp: int
    pp: int
    ep: int
    quantization: str
    kv_dtype: str
    batch: int
    input_tokens: int
    output_tokens: int
    preset: str
    gpus: int
    concurrency: int
    fits: bool
    memory: dict[str, float]
    decode_ms: dict[str, float]
    prefill_ms: dict[str, float]
    tpot_ms: float
    ttft_ms: float
    throughput_tokens_per_s: float
    decode_tokens_per_s: float
    throughput_tokens_per_s_per_gpu: float
    mbu: float
    mfu: float
    power_w: float | None
    cost_per_hour: float | None
    cost_per_million_tokens: float | None
    price_usd_per_gpu_hour: float | None
    price_source: str
    regime: str
    regime_shares: dict[str, float]
    assumptions: dict[str, Any] = field(default_factory=dict)
    under_load: dict[str, Any] | None = None     # figures at a stated concurrency or rate (docs/load.md)
    model_notes: list[str] = field(default_factory=list)   # what a config.json import read, assumed, ignored
    calibration_notes: list[str] = field(default_factory=list)   # the GPU calibrated by the global fit only, why
    quantization_from: str = "given"      # given | name (the checkpoint name states it) | release (as published)
    quality: str = ""                     # the format's accuracy cost, the release format being the reference
    checkpoint: dict[str, Any] | None = None   # the checkpoint that serves the format (planner/catalog/checkpoints.py)
    calibration: str = "none"             # the calibration applied: none, default, or a file
    uncalibrated: dict[str, Any] | None = None   # with a calibration: the same figures under the priors (UNCALIBRATED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _none_if_nan(x: float) -> float | None:
    return None if x != x else x


def run_estimate(
    model: ModelSpec, gpu: Gpu, *, tp: int, pp: int, ep: int, quantization: str, kv_dtype: str,
    batch: int, input_tokens: int, output_tokens: int, assumptions: Assumptions, preset: str = "custom",
    price_usd_per_gpu_hour: float | None = None, price_source: str | None = None,
    efficiency_scale: dict[str, tuple[float, float, float]] | None = None,
    concurrency: int | None = None, requests_per_s: float | None = None, calibration_notes: tuple[str, ...] = (),
    quantization_from: str = "given", named: Checkpoint | None = None,
) -> Estimate:
    """Evaluate one configuration. Raises InputError for configurations that cannot exist."""
    quantization = scheme_of(quantization, path="quantization")  # awq, fp8, nvfp4... -> scheme (docs/support.md)
    if quantization not in SCHEMES:
        raise InputError("unknown quantization", path="quantization", value=quantization, accepted=", ".join(SCHEMES))
    if kv_dtype not in KV_DTYPES:
        raise InputError("unknown KV dtype", path="kv_dtype", value=kv_dtype, accepted=", ".join(KV_DTYPES))
    if input_tokens + output_tokens > model.max_context_tokens:
        raise InputError(
            f"input + output tokens ({input_tokens + output_tokens}) exceed {model.name}'s context of "
            f"{model.max_context_tokens} tokens", path="input_tokens", value=input_tokens,
            accepted=f"input_tokens + output_tokens <= {model.max_context_tokens}")
    table = GpuTable.build([gpu], efficiency_scale)
    cfg = Configs.single(0, quantization, kv_dtype, tp, pp, ep, batch, input_tokens, output_tokens)
    ev = evaluate(model, table, cfg, assumptions)
    r = ev.row(0)
    if not r["valid"]:
        _explain_invalid(int(r["invalid_reason"]), model, gpu, quantization, tp, pp, ep)
    shares = regime_shares(ev, 0)
    price = price_usd_per_gpu_hour if price_usd_per_gpu_hour is not None else gpu.price_usd_per_gpu_hour
    cost_h = float(cost_per_hour(r["gpus"], np.nan if price is None else price))
    cost_m = float(cost_per_million_tokens(cost_h, r["throughput_tokens_per_s"]))
    return Estimate(
        model=model.id or model.name, gpu=gpu.id, tp=tp, pp=pp, ep=ep, quantization=quantization,
        kv_dtype=kv_dtype, batch=batch, input_tokens=input_tokens, output_tokens=output_tokens,
        preset=preset, gpus=int(r["gpus"]), concurrency=int(r["concurrency"]), fits=bool(r["fits"]),
        memory={k: r[k] for k in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "reserve_bytes",
                                  "total_bytes", "usable_bytes", "capacity_bytes", "kv_bytes_per_sequence")}
        | {"max_batch": r["max_batch"]},
        decode_ms={k: r[k] / MS for k in ("t_weights", "t_linear_compute", "t_kv", "t_attn_compute",
                                          "t_tp_comm", "t_ep_comm", "t_activations")}
        | {"t_pp_comm_per_token": r["t_pp_comm"] / MS, "t_overhead_per_token": r["t_overhead"] / MS},
        prefill_ms={"compute": r["ttft_compute"] / MS, "communication": r["ttft_comm"] / MS},
        tpot_ms=r["tpot"] / MS, ttft_ms=r["ttft"] / MS,
        throughput_tokens_per_s=r["throughput_tokens_per_s"], decode_tokens_per_s=r["decode_tokens_per_s"],
        throughput_tokens_per_s_per_gpu=r["throughput_tokens_per_s"] / r["gpus"],
        mbu=r["mbu"], mfu=r["mfu"], power_w=_none_if_nan(r["power_w"]),
        cost_per_hour=_none_if_nan(cost_h), cost_per_million_tokens=_none_if_nan(cost_m),
        price_usd_per_gpu_hour=price,
        price_source=price_source or (gpu.price_source or "catalog") if price is not None
        else "no price: give price_usd_per_gpu_hour or tco",
        regime=regime_of(shares), regime_shares=shares, assumptions=assumptions.model_dump(),
        under_load=_under_load(model, table, cfg, assumptions, concurrency, requests_per_s)
        if (concurrency or requests_per_s) and r["max_batch"] >= 1 else None,
        model_notes=list(model.notes), calibration_notes=list(calibration_notes),
        quantization_from=quantization_from, quality=quality_of(quantization, model.release_quantization),
        checkpoint=serving_checkpoint(model, quantization, gpu=gpu, kv=kv_dtype, named=named).to_dict()
        if model.hf_id or named is not None else None,
    )


def _under_load(model: ModelSpec, table: GpuTable, cfg: Configs, o: Assumptions, concurrency: int | None,
                requests_per_s: float | None) -> dict[str, Any]:
    """The configuration as an engine with continuous batching and chunked prefill (the batch is
    max-num-seqs), under a closed loop of ``concurrency`` clients or Poisson arrivals at
    ``requests_per_s``: TTFT, TPOT, ITL and end-to-end statistics, throughput, utilisation."""
    phys = step_physics(model, table, cfg, o)
    eng = engine(phys)
    wl = Workload(isl=float(cfg.input_tokens[0]), osl=float(cfg.output_tokens[0]))
    r = load_metrics(phys, eng, wl, rate=requests_per_s, clients=concurrency)
    stable = bool(r.stable[0])
    # past saturation the queue grows without bound: no latency is finite (None, not a number)
    stats = {f"{m}_{s}_ms": float(r.get(m, s)[0]) / MS if stable else None for m in ("ttft", "tpot", "itl", "e2e")
             for s in ("mean", "p50", "p90", "p99")}
    conc = float(r.concurrency[0])
    return {"concurrency": conc if np.isfinite(conc) else None, "requests_per_s": float(r.rate[0]),
            "throughput_tokens_per_s": float(r.throughput_tokens_per_s[0]),
            "utilization": float(r.rho[0]) if np.isfinite(r.rho[0]) else None,
            "capacity_requests_per_s": float(r.saturation_rate[0]),
            "stable": stable, "running_per_lane": float(r.running[0]) if stable else float(eng.max_seqs[0]),
            "max_num_seqs": int(eng.max_seqs[0]), "max_num_batched_tokens": int(eng.token_budget[0]),
            "closed_loop": concurrency is not None} | stats


def _explain_invalid(code: int, model: ModelSpec, gpu: Gpu, quantization: str, tp: int, pp: int, ep: int) -> None:
    if code == 1:
        usable = [s for s, sc in SCHEMES.items()
                  if sc.math_format in gpu.peak_dense_flops_per_s
                  or (sc.fallback_format and sc.fallback_format in gpu.peak_dense_flops_per_s)]
        if not usable:
            raise MissingDataError(
                f"GPU {gpu.id!r} has no peak FLOP/s in the catalog ({gpu.assumptions or 'not published'})",
                path="gpu", value=gpu.id,
                accepted=f"add gpus.{gpu.id}.peak_dense_flops_per_s.bf16 in a catalog override file")
        raise InputError(f"{gpu.id} cannot run {quantization}: it has no "
                         f"{SCHEMES[quantization].math_format} math", path="quantization",
                         value=quantization, accepted=", ".join(usable))
    heads = model.num_attention_heads
    if code == 2:
        ok = [d for d in range(1, heads + 1) if heads % d == 0]
        raise InputError(f"TP must divide the {heads} attention heads", path="tp", value=tp,
                         accepted=", ".join(map(str, ok)))
    if code == 3:
        raise InputError("PP cannot exceed the number of layers", path="pp", value=pp,
                         accepted=f"1..{model.num_layers}")
    raise InputError(INVALID_REASONS[code], path="ep", value=ep,
                     accepted="1, or a divisor of the expert count that divides or is a multiple of TP"
                     if model.moe else "1 (dense model)")


UNCALIBRATED: tuple[str, ...] = ("ttft_ms", "tpot_ms", "throughput_tokens_per_s", "decode_tokens_per_s",
                                 "cost_per_million_tokens")
"""The figures a calibrated estimate shows again as the priors give them (issue 22 item 4)."""
UNCALIBRATED_LOAD: tuple[str, ...] = ("ttft_mean_ms", "ttft_p99_ms", "tpot_mean_ms", "tpot_p99_ms",
                                      "throughput_tokens_per_s")


def uncalibrated_figures(e: Estimate) -> dict[str, Any]:
    """The figures of ``e`` that a calibration moves, for showing beside the calibrated ones."""
    return beside(asdict(e), UNCALIBRATED, {"under_load": UNCALIBRATED_LOAD})


def estimate_from_spec(spec: EstimateSpec, doc: Document | None = None, catalog: Catalog | None = None,
                       calibration: str | None = None) -> Estimate:
    """The configuration's estimate; with a calibration, the uncalibrated figures beside it."""
    e = _estimate(spec, doc, catalog, calibration)
    if calibration in (None, "none"):
        return e
    priors = _estimate(spec, doc, catalog, None)
    return replace(e, calibration=str(calibration), uncalibrated=uncalibrated_figures(priors))


def _estimate(spec: EstimateSpec, doc: Document | None, catalog: Catalog | None, calibration: str | None
              ) -> Estimate:
    try:
        r = resolve_estimate(spec, doc, catalog, calibration)
        return run_estimate(
            r.model, r.gpu, tp=spec.tp, pp=spec.pp, ep=spec.ep, quantization=r.quantization,
            kv_dtype=spec.kv_dtype, batch=spec.batch, input_tokens=spec.input_tokens,
            output_tokens=spec.output_tokens, assumptions=r.assumptions, preset=spec.preset,
            price_usd_per_gpu_hour=r.price_usd_per_gpu_hour, price_source=r.price_source,
            efficiency_scale=r.efficiency_scale, concurrency=spec.concurrency, requests_per_s=spec.requests_per_s,
            calibration_notes=r.calibration_notes, quantization_from=r.quantization_from, named=r.named)
    except InputError as exc:
        if exc.file is None and doc is not None:
            raise exc.located(file=doc.file) from None
        raise
