"""Parameter counts and KV sizes against published figures (issue 2's targets)."""

import pytest

from planner.catalog.store import Catalog
from planner.physics.params import count_parameters
from planner.physics.perf import Arch
from planner.units import KiB

CAT = Catalog.default()


@pytest.mark.parametrize("model,total,active", [
    ("llama-2-70b", 68.98e9, None),
    ("llama-3.1-405b", 405.8e9, None),
    ("mixtral-8x7b", 46.7e9, 12.9e9),
    ("deepseek-v3", 671e9, 37.6e9),
    ("llama-2-7b", 6.74e9, None),          # Meta's model card
    ("llama-3.1-8b", 8.03e9, None),
    ("qwen3-235b-a22b", 235e9, 22e9),       # Qwen's model card: 235B total, 22B activated
    ("qwen3-32b", 32.8e9, None),
    ("gpt-j-6b", 6.05e9, None),
])
def test_parameter_counts_within_half_a_percent(model, total, active):
    p = count_parameters(CAT.model(model))
    assert p.total == pytest.approx(total, rel=0.005)
    if active is not None:
        assert p.active == pytest.approx(active, rel=0.01 if model == "qwen3-235b-a22b" else 0.005)


def test_llama2_70b_exact_count():
    # formula sheet: 151M attention + 705M MLP per layer, 68.98B in total
    p = count_parameters(CAT.model("llama-2-70b"))
    assert p.attention_per_layer == 8192 * 8192 * 2 + 2 * 8192 * 8 * 128
    assert p.dense_mlp_per_layer == 3 * 8192 * 28672
    assert round(p.total / 1e7) == 6898


def test_tied_embeddings_counted_once():
    m = CAT.model("llama-3.1-8b")
    untied = count_parameters(m).total
    tied = count_parameters(m.model_copy(update={"tie_embeddings": True})).total
    assert untied - tied == m.vocab_size * m.hidden_size


def test_kv_bytes_per_token():
    a = Arch.of(CAT.model("llama-2-70b"))
    assert a.kv_elements * 2 * a.layers == 320 * KiB
    d = Arch.of(CAT.model("deepseek-v3"))
    assert d.kv_elements * d.layers * 2 == 576 * 61 * 2   # MLA latent, no factor 2 for K and V
    assert not d.kv_replicates                              # the latent is not split by TP
