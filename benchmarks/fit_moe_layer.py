"""Fit a fixed cost per MoE layer and decode step for each engine, with leave-one-system-out
and leave-one-model-out cross-validation (issue 22 item 3; docs/validation.md).

The candidate term: an MoE layer launches kernels a dense layer has not (the router's top-k,
sorting the tokens by expert, the grouped GEMMs' permute and un-permute, their quantizations:
``terms.MOE_ROUTING_KERNELS`` and more), whose time does not depend on the tokens; it adds
``moe_layers x delta_e`` to every decode step of engine e. Rows: the aggregated closed-loop TPOT
rows of MoE models whose measured prefill share u (``benchmarks/tpot_checks.py`` check 1) is
below 0.3, where the decode step is what TPOT measures. The term enters separably:

    TPOT = TPOT_0 + moe_layers x delta_e

TPOT_0 the prediction of ``planner validate --csv`` less the shipped profile's own term. delta_e is chosen on a grid
0-100 us (the bound: ten kernels at 10 us) minimising the median |log(predicted / measured)|;
the cross-validation fits on all systems (models) but one and scores the held-out one's rows.

    python benchmarks/fit_moe_layer.py [CORPUS] [VALIDATE_CSV]
"""

from __future__ import annotations

import statistics as st
import sys
from math import log
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpot_checks import REFERENCE, _rows, measured_shares  # noqa: E402

from planner.catalog.store import Catalog  # noqa: E402
from planner.physics.options import engine_profile  # noqa: E402
from planner.physics.terms import Arch  # noqa: E402

GRID_US = (0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)
U_MAX = 0.3


def _cases(corpus: str, predictions: str) -> list[dict]:
    cat = Catalog.default()
    out = []
    for x, u in measured_shares(_rows(corpus, predictions)):
        moe = Arch.of(cat.models[x["case"].model]).params.moe_layers
        if moe > 0 and u < U_MAX:
            # the prediction less the profile's own term (additive in the step): TPOT_0
            pp = float(x["case"].pp)
            shipped = float(engine_profile(x["engine"])["moe_layer_overhead_s"])   # type: ignore[arg-type]
            out.append(dict(x, moe=moe, pp=pp, pred=x["pred"] - moe * pp * shipped))
    return out


def _err(xs: list[dict], delta_us: float) -> list[float]:
    return [abs(log((x["pred"] + x["moe"] * x["pp"] * delta_us * 1e-6) / x["tpot"])) for x in xs]


def _fit(xs: list[dict]) -> float:
    return min(GRID_US, key=lambda d: (st.median(_err(xs, d)), d))


def main() -> None:
    corpus = sys.argv[1] if len(sys.argv) > 1 else str(REFERENCE / "measured-silicon.csv")
    preds = sys.argv[2] if len(sys.argv) > 2 else "/tmp/validate.csv"
    rows = _cases(corpus, preds)
    print(f"MoE TPOT rows with measured prefill share u < {U_MAX}: {len(rows)}")
    print("median |error| % (as exp(median |log|) - 1): term off / fitted in sample / held out")
    for eng in ("sglang", "trtllm", "vllm"):
        xs = [x for x in rows if x["engine"] == eng]
        if not xs:
            continue
        d = _fit(xs)
        off, fit = st.median(_err(xs, 0)), st.median(_err(xs, d))
        print(f"\n{eng}: {len(xs)} rows; fitted delta {d} us a MoE layer; "
              f"in sample {100 * (2.718281828 ** off - 1):.1f} -> {100 * (2.718281828 ** fit - 1):.1f} %")
        for key in ("system", "model"):
            groups = sorted({x[key] for x in xs})
            if len(groups) < 2:
                print(f"  leave-one-{key}-out: one {key} only ({groups[0]}), no held-out fold")
                continue
            for g in groups:
                train = [x for x in xs if x[key] != g]
                test = [x for x in xs if x[key] == g]
                dg = _fit(train)
                a, b = st.median(_err(test, 0)), st.median(_err(test, dg))
                print(f"  leave out {key} {g:16s} ({len(test):3d} rows): delta {dg:3d} us; held out "
                      f"{100 * (2.718281828 ** a - 1):5.1f} -> {100 * (2.718281828 ** b - 1):5.1f} %")


if __name__ == "__main__":
    main()
