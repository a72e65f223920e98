"""Issue 27 item 4: today's GPUs as catalog entries (B300, GB300, MI355X, MI350X, H20,
RTX PRO 6000 Blackwell Server, L40, A10), each figure checked against its row of
../shared/reference/gpus.csv; the calibration applies by the entry's ``family``, so a GPU
from an override file gets its family's fit (or says it has none) with no code to edit."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from planner.catalog.store import Catalog
from planner.catalog.support import support
from planner.errors import InputError
from planner.resolve.calibration import family_of, load_calibration
from planner.resolve.problem import resolve_estimate
from planner.schemas.estimate import EstimateSpec

CAT = Catalog.default()
GPUS_CSV = Path("/work/shared/reference/gpus.csv")
if not GPUS_CSV.is_file():
    GPUS_CSV = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gpus.csv"

NEW = {"NVIDIA B300 SXM 288GB (HGX B300)": "b300", "NVIDIA GB300 (per Blackwell Ultra GPU in NVL72)": "gb300",
       "AMD Instinct MI355X 288GB": "mi355x", "AMD Instinct MI350X 288GB": "mi350x", "NVIDIA H20 96GB": "h20",
       "NVIDIA RTX PRO 6000 Blackwell Server Edition 96GB": "rtx-pro-6000", "NVIDIA L40 48GB": "l40",
       "NVIDIA A10 24GB": "a10"}
# Where the entry takes another figure than the row's first number, and why (the row's notes).
TAKEN_ELSEWHERE = {
    ("b300", "memory_gb"): "270 GiB exposed: HGX 2.1 TB / 8 read as TiB, DGX 2.3 TB as 1e12 bytes, Verda 270 GB",
    ("gb300", "memory_gb"): "279 GiB usable: Verda per GPU, NVIDIA's 20 TB rack / 72",
    ("l40", "memory_gb"): "45 GiB usable: GDDR6 ECC stored inline in 1/16, as L40S",
    ("a10", "memory_gb"): "22.5 GiB usable: GDDR6 ECC inline, as A10G",
    ("rtx-pro-6000", "memory_gb"): "90 GiB usable: GDDR7 ECC inline, as the GDDR6 data-center boards",
    ("mi355x", "interconnect_unidir_gbps"): "the row's 535.5 aggregate; 76.5 per peer in per_peer_bandwidth",
    ("mi350x", "interconnect_unidir_gbps"): "as MI355X",
}
COLUMNS = {"bf16_dense_tflops": ("bf16", 1e12), "fp16_dense_tflops": ("fp16", 1e12),
           "fp8_dense_tflops": ("fp8", 1e12), "int8_dense_tops": ("int8", 1e12), "fp4_dense_tflops": ("fp4", 1e12)}


def _first_number(cell: str) -> float | None:
    m = re.match(r"\s*([0-9]+(?:\.[0-9]+)?)", cell or "")
    return float(m.group(1)) if m else None


def _rows() -> dict[str, dict[str, str]]:
    with GPUS_CSV.open(newline="", encoding="utf-8") as f:
        return {r["gpu"]: r for r in csv.DictReader(f) if r["gpu"] in NEW}


@pytest.mark.skipif(not GPUS_CSV.is_file(), reason="shared/reference/gpus.csv not present")
@pytest.mark.parametrize("row_name", sorted(NEW))
def test_each_new_gpu_agrees_with_its_gpus_csv_row(row_name: str) -> None:
    row, g = _rows()[row_name], CAT.gpus[NEW[row_name]]
    for col, (fmt, unit) in COLUMNS.items():
        want = _first_number(row[col])
        got = g.peak_dense_flops_per_s.get(fmt)          # type: ignore[call-overload]
        if want is None:      # blank or n/a in the row: no figure invented
            assert got is None, (g.id, fmt)
        else:
            assert got == pytest.approx(want * unit, rel=1e-3), (g.id, fmt)
    assert g.memory_bandwidth_bytes_per_s == pytest.approx(_first_number(row["mem_bw_tbps"]) * 1e12)
    assert g.power_w == _first_number(row["tdp_w"])
    if (g.id, "interconnect_unidir_gbps") not in TAKEN_ELSEWHERE:
        assert g.intra_node.bandwidth_bytes_per_s == pytest.approx(_first_number(row["interconnect_unidir_gbps"]) * 1e9)
    if (g.id, "memory_gb") not in TAKEN_ELSEWHERE:
        assert g.memory_bytes == _first_number(row["memory_gb"]) * 2**30   # a vendor "GB" of HBM is GiB
    mamf = _first_number(row["measured_mamf_bf16_tflops"])
    assert g.measured_mamf_flops_per_s.get("bf16") == (None if mamf is None else mamf * 1e12)
    assert g.price_usd_per_gpu_hour is None and g.price_kind == "none"     # no dated price in the row


def test_new_gpus_are_entries_with_family_formats_and_domain() -> None:
    for gid in NEW.values():
        g = CAT.gpus[gid]
        assert g.family and g.architecture and g.source, gid
    assert CAT.gpus["gb300"].domain_gpus == 72 and CAT.gpus["gb300"].gpus_per_node == 4
    assert CAT.gpus["b300"].domain_gpus == 8
    # FP4 and FP6 where the hardware has them; Blackwell Ultra's INT8 at its cut rate
    for gid in ("b300", "gb300", "mi355x", "mi350x"):
        assert {"fp4", "fp6"} <= set(CAT.gpus[gid].peak_dense_flops_per_s), gid
    for gid in ("b300", "gb300"):
        int8 = CAT.gpus[gid].peak_dense_flops_per_s["int8"]
        assert int8 < CAT.gpus[gid].peak_dense_flops_per_s["fp8"] / 20
        r = support(CAT.gpus[gid], "w8a8-int8", "bf16")
        assert not r.ok and "do not plan INT8 on B300/GB300" in r.reason
        assert support(CAT.gpus[gid], "fp4", "fp8").ok
    assert not support(CAT.gpus["mi355x"], "fp4", "bf16").ok       # NVFP4 is Blackwell-only (R1)
    assert support(CAT.gpus["mi355x"], "w8a8-fp8", "bf16").ok      # FP8 W8A8 on AMD GPUs (R1)
    assert not support(CAT.gpus["h20"], "fp4", "bf16").ok


@pytest.mark.parametrize("typed,gid", [("B300", "b300"), ("NVIDIA GB300", "gb300"), ("MI355X", "mi355x"),
                                       ("AMD Instinct MI350X", "mi350x"), ("H20", "h20"), ("L40", "l40"),
                                       ("A10", "a10"), ("RTX PRO 6000", "rtx-pro-6000"),
                                       ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000")])
def test_new_gpu_names_resolve(typed: str, gid: str) -> None:
    assert CAT.gpu_id(typed) == gid


def _estimate(tmp_path: Path, gpu: str, calibration: str, override: str | None = None):
    spec: dict = {"model": "llama-3.1-8b", "gpu": gpu, "batch": 8, "input_tokens": 512, "output_tokens": 128}
    if override is not None:
        f = tmp_path / "gpus.yaml"
        f.write_text(override)
        spec["catalog"] = [str(f)]
    return resolve_estimate(EstimateSpec.model_validate(spec), calibration=calibration)


HOPPER_LIKE = """gpus:
  my-hopper:
    name: My Hopper 80GB
    vendor: nvidia
    architecture: hopper
{family}    peak_dense_flops_per_s: {{bf16: 989.0e12, fp8: 1979.0e12}}
    memory_bytes: 85.899345920e9
    memory_bandwidth_bytes_per_s: 3.35e12
    intra_node: {{kind: nvlink, bandwidth_bytes_per_s: 450.0e9, latency_s: 10.0e-6}}
    gpus_per_node: 8
    inter_node: {{kind: ib, bandwidth_bytes_per_s: 50.0e9, latency_s: 25.0e-6}}
    source: test
"""


def test_a_gpu_from_an_override_file_gets_its_familys_calibration(tmp_path: Path) -> None:
    """Issue 27: a GPU from an override file silently got no calibration (a hand-written id
    table). Now its entry's family brings the family's fit; without one it says so."""
    ref = _estimate(tmp_path, "h100-sxm", "default")
    mine = _estimate(tmp_path, "my-hopper", "default", HOPPER_LIKE.format(family="    family: nvidia-hopper\n"))
    assert ref.efficiency_scale["h100-sxm"] != (1.0, 1.0, 1.0)
    assert mine.efficiency_scale["my-hopper"] == ref.efficiency_scale["h100-sxm"]
    assert not mine.calibration_notes
    bare = _estimate(tmp_path, "my-hopper", "default", HOPPER_LIKE.format(family=""))
    assert "my-hopper" not in bare.efficiency_scale
    assert bare.calibration_notes == ("my-hopper: the calibration's global fit only (its catalog entry names no "
                                      "family)",)
    b300 = _estimate(tmp_path, "b300", "default")
    assert b300.calibration_notes == ("b300: the calibration's global fit only (its family 'nvidia-blackwell' has "
                                      "no fit in the calibration)",)
    assert family_of(CAT.gpus["h20"]) == family_of("h20") == "nvidia-hopper"


def test_a_calibration_may_fit_a_family_only_an_override_declares(tmp_path: Path) -> None:
    f = tmp_path / "cal.yaml"
    f.write_text("assumptions: {compute_efficiency: 0.7}\nper_family: {my-family: {compute_efficiency: 0.35}}\n")
    with pytest.raises(InputError, match="unknown GPU family"):
        load_calibration(str(f))
    assert load_calibration(str(f), {"my-family"}).per_family == {"my-family": {"compute_efficiency": 0.35}}
    mine = _estimate(tmp_path, "my-hopper", str(f), HOPPER_LIKE.format(family="    family: my-family\n"))
    assert mine.efficiency_scale["my-hopper"][1] == pytest.approx(0.5)     # 0.35 / 0.7
