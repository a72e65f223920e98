"""`planner estimate`: one configuration, by flags or from a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli.common import choices, dump_json, emit, guarded
from planner.cli.render import render_estimate
from planner.estimate.run import estimate_from_spec
from planner.physics.options import PRESETS
from planner.physics.space import KV_NAMES, SCHEME_NAMES
from planner.schemas.estimate import EstimateSpec, load_estimate_spec
from planner.yamlio import Document

EPILOG = (
    "Example: planner estimate --model llama-2-70b --gpu h100-sxm --tp 8 --batch 64 "
    "--input-tokens 1024 --output-tokens 256\n\n"
    "Example: planner estimate instances/estimate_llama70b_h100.yaml --json"
)


KvChoice = choices("KvChoice", KV_NAMES)
PresetChoice = choices("PresetChoice", tuple(PRESETS))


def estimate(
    file: Annotated[Optional[Path], typer.Argument(help="YAML file with the configuration; flags override it")] = None,
    model: Annotated[Optional[str], typer.Option(help="catalog model id, e.g. llama-2-70b")] = None,
    gpu: Annotated[Optional[str], typer.Option(help="catalog GPU id, e.g. h100-sxm")] = None,
    tp: Annotated[Optional[int], typer.Option(help="tensor-parallel degree")] = None,
    pp: Annotated[Optional[int], typer.Option(help="pipeline-parallel degree")] = None,
    ep: Annotated[Optional[int], typer.Option(help="expert-parallel degree (MoE)")] = None,
    quantization: Annotated[Optional[str], typer.Option(
        help=f"weight format: a scheme ({', '.join(SCHEME_NAMES)}) or a precision word as people type it (bf16, "
        "fp8, int8, awq, nvfp4...; docs/support.md); default: the checkpoint's format (its name's, else its "
        "release format)")] = None,
    kv_dtype: Annotated[Optional[KvChoice], typer.Option("--kv-dtype", help="KV-cache dtype")] = None,
    batch: Annotated[Optional[int], typer.Option(help="sequences per decode step per GPU (micro-batch)")] = None,
    input_tokens: Annotated[Optional[int], typer.Option("--input-tokens", help="prompt tokens per request")] = None,
    output_tokens: Annotated[Optional[int], typer.Option("--output-tokens", help="generated tokens per request")] = None,
    preset: Annotated[Optional[PresetChoice], typer.Option(help="assumption preset (docs/model.md)")] = None,
    price: Annotated[Optional[float], typer.Option("--price", help="$/GPU-hour, overriding the catalog")] = None,
    catalog: Annotated[Optional[list[Path]], typer.Option("--catalog", help="catalog override file (repeatable)")] = None,
    calibration: Annotated[str, typer.Option(help="none, default (the shipped fit) or a calibration file")] = "none",
    concurrency: Annotated[Optional[int], typer.Option(
        help="figures under load: N clients in a closed loop per replica (the batch is max-num-seqs)")] = None,
    rate: Annotated[Optional[float], typer.Option(
        "--requests-per-s", help="figures under load: Poisson arrivals at this rate per replica")] = None,
    speculative_tokens: Annotated[Optional[int], typer.Option(
        "--speculative-tokens", help="speculative decoding / MTP: draft tokens per decode step (0 = off; "
        "assumption speculative_tokens, docs/model.md section 4)")] = None,
    speculative_acceptance: Annotated[Optional[float], typer.Option(
        "--speculative-acceptance", help="probability each draft token is accepted (assumption "
        "speculative_acceptance, default 0.7)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Evaluate one fixed configuration: memory, step time, regime, TTFT, TPOT, throughput, cost."""

    def run() -> None:
        spec, doc = _spec(file, dict(
            model=model, gpu=gpu, tp=tp, pp=pp, ep=ep, quantization=quantization,
            kv_dtype=kv_dtype and kv_dtype.value,
            batch=batch, input_tokens=input_tokens, output_tokens=output_tokens, preset=preset and preset.value,
            price_usd_per_gpu_hour=price, concurrency=concurrency, requests_per_s=rate, catalog=[str(c.absolute()) for c in catalog] if catalog else None),
            assumptions={k: v for k, v in (("speculative_tokens", speculative_tokens),
                                           ("speculative_acceptance", speculative_acceptance)) if v is not None})
        result = estimate_from_spec(spec, doc, calibration=calibration)
        emit(dump_json(result.to_dict()) if as_json else render_estimate(result))

    guarded(run, as_json=as_json)


def _spec(file: Optional[Path], flags: dict, assumptions: dict | None = None) -> tuple[EstimateSpec, Document | None]:
    """The spec from the file (if any) with the flags over it; ``assumptions``: assumption
    fields given by flags, merged into the file's ``assumptions`` block field by field."""
    given = {k: v for k, v in flags.items() if v is not None}
    if file is None:
        if assumptions:
            given["assumptions"] = dict(assumptions)
        doc = Document(data=given, file="<command line>")
        return doc.validate(EstimateSpec), None
    spec, doc = load_estimate_spec(str(file))
    if not given and not assumptions:
        return spec, doc
    merged = spec.model_dump(exclude_unset=True) | given
    if assumptions:
        merged["assumptions"] = dict(spec.assumptions) | assumptions
    return doc.validate(EstimateSpec, merged), doc
