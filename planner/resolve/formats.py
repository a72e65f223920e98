"""The weight formats searched for a model when the instance names none: its release format,
the formats of checkpoints published for it, and the formats one can make from the release
without adding bits (docs/support.md, "Release formats").

- The release format (``ModelSpec.release_quantization``, read from the checkpoint's
  quantization_config; 16-bit when it states none) is always searched: it is the model as
  published, whatever its bits.
- A checkpoint name that states a format (``Qwen/Qwen3-32B-FP8``) searches that format only.
- Any other format is searched when it stores no more bits than the release on the dense
  weights and none more on the routed experts (quantize it yourself: an FP8 checkpoint can be
  made from BF16 weights, nothing is gained by making BF16 or FP8 weights from gpt-oss's
  MXFP4 experts), or when a checkpoint in it is published (``ModelSpec.checkpoints``), and in
  both cases only above the quality floor (``search.min_weight_bits``, default 8 bits, on the
  experts too): 4-bit formats are searched when named.
"""

from __future__ import annotations

from planner.catalog.aliases import Checkpoint
from planner.catalog.schema import ModelSpec
from planner.physics.quant import SCHEMES
from planner.physics.space import SCHEME_NAMES


def default_schemes(model: ModelSpec, named: Checkpoint | None, floor: float) -> tuple[str, ...]:
    """The schemes searched for ``model`` (module docstring), in SCHEME_NAMES order."""
    if named is not None and named.scheme_from == "name" and named.scheme:
        return (named.scheme,)
    release = model.release_quantization or "w16a16"
    r = SCHEMES[release]
    published = {c.scheme for c in model.checkpoints}
    out = []
    for name in SCHEME_NAMES:
        s = SCHEMES[name]
        if name == release:
            out.append(name)
            continue
        if min(s.bits_per_weight, s.expert_bits) < floor or (not s.searched_by_default and name not in published):
            continue
        if name in published or (s.bits_per_weight <= r.bits_per_weight and s.expert_bits <= r.expert_bits):
            out.append(name)
    return tuple(out)
