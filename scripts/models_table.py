"""What every config.json of shared/reference/hf-configs maps to, as a markdown table.

    python scripts/models_table.py                     # print the table
    python scripts/models_table.py --write docs/models.md   # replace the table in that file

The table sits between the markers ``<!-- models-table -->`` and ``<!-- /models-table -->``;
tests/test_docs_models.py fails when the file and this script disagree. Figures: parameter
counts from planner/physics/params.py, KV bytes per sequence at 8,192 tokens in bf16 from
planner/physics/attention.py (closed forms), for the language model as imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from planner.catalog.schema import ModelSpec  # noqa: E402
from planner.catalog.store import model_from_hf_config  # noqa: E402
from planner.errors import InputError  # noqa: E402
from planner.physics.attention import attention_layout, kv_bytes_per_sequence  # noqa: E402
from planner.physics.params import count_parameters  # noqa: E402

CONFIGS = next((d for d in (ROOT.parent / "shared" / "reference" / "hf-configs",
                             Path("/work/shared/reference/hf-configs")) if d.is_dir()),
               ROOT.parent / "shared" / "reference" / "hf-configs")
START, END = "<!-- models-table -->", "<!-- /models-table -->"


def _attention(m: ModelSpec) -> str:
    if m.attention == "mla" and m.mla is not None:
        a = m.mla
        head = f"MLA {m.num_attention_heads} heads, latent {a.kv_lora_rank}+{a.qk_rope_head_dim}"
    else:
        head = f"GQA {m.num_attention_heads}/{m.num_kv_heads} x {m.head_dim}"
    kinds = Counter()
    for g in m.layer_groups:
        name = {"full": "full", "sliding": f"window {g.window_tokens}", "chunked": f"chunk {g.window_tokens}",
                "compressed": f"pooled /{g.compress_ratio} + {g.window_tokens} raw",
                "state_space": "linear/SSM"}[g.kind]
        kinds[name] += g.count
    layers = ", ".join(f"{n} {k}" for k, n in kinds.items()) if kinds else f"{m.num_layers} full"
    if m.sparse_attention is not None:
        own = sum(g.count for g in m.layer_groups if g.indexer in (None, "own") and g.kind != "state_space") \
            if m.layer_groups else m.num_layers
        layers += f"; top-{m.sparse_attention.top_k_tokens} indexed ({own} own indexers)"
    return f"{head}; {layers}"


def _ffn(m: ModelSpec) -> str:
    if m.moe is None:
        return f"dense {m.intermediate_size}" + (" plain" if m.mlp == "plain" else "")
    e = m.moe
    out = f"MoE {e.num_experts} x {e.expert_intermediate_size}, top {e.experts_per_token}"
    if e.num_shared_experts:
        out += f", {e.num_shared_experts} shared"
    if e.first_dense_layers:
        out += f", {e.first_dense_layers} dense"
    if e.moe_layer_step > 1:
        out += f", every {e.moe_layer_step}th layer"
    if e.latent_size:
        out += f", latent {e.latent_size}"
    return out


def rows() -> list[str]:
    out = ["| config | model_type | attention (layers by kind) | FFN | params total / active (B) | KV at 8k, bf16 (MB) "
           "| MTP | towers | release format | ignored keys |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(CONFIGS.glob("*.json")):
        if path.stem.endswith(".hf_quant_config"):
            continue
        cfg = json.loads(path.read_text())
        text = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
        mtype = str(text.get("model_type") or cfg.get("model_type"))
        try:
            m = model_from_hf_config(path)
        except InputError as exc:
            out.append(f"| {path.stem} | {mtype} | refused: {exc.message} | | | | | | | |")
            continue
        p = count_parameters(m)
        kv = kv_bytes_per_sequence(attention_layout(m), np.array([8192.0]), 2.0)[0]
        towers = ", ".join(f"{t.kind} {t.parameters / 1e9:.2f}B" for t in m.towers) or "-"
        ignored = next((n.split(": ", 1)[1] for n in m.notes if n.startswith("ignored")), "-")
        out.append(f"| {path.stem} | {mtype} | {_attention(m)} | {_ffn(m)} | {p.total / 1e9:,.2f} / "
                   f"{p.active / 1e9:,.2f} | {kv / 1e6:,.1f} | {m.mtp_layers or '-'} | {towers} | "
                   f"{m.release_quantization or '16-bit'} | {ignored} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", type=Path, help="replace the table between the markers in this file")
    args = ap.parse_args()
    table = "\n".join(rows())
    if args.write is None:
        print(table)
        return
    text = args.write.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    args.write.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
