"""Which checkpoint serves a plan's weight format: the release when it is in that format, a
published checkpoint the catalog lists (``ModelSpec.checkpoints``), the one the user named,
or none ("quantize it yourself", from the checkpoint named). A launch never serves another
format silently: a format without a checkpoint gets a placeholder to edit.

    serving_checkpoint(model, scheme, gpu=None, kv="bf16", named=None, tuning="instruct")
        -> ServingCheckpoint(kind, repository, scheme, release, source, from_repository, ...)

``kind``: ``release`` (the architecture's own checkpoint, ``hf_id``), ``published`` (another
repository in that format), ``named`` (the repository the user named, in that format), or
``quantize`` (no checkpoint in that format is known; ``from_repository`` is the one to start
from). A checkpoint in format f also serves a plan in format s on a GPU where the engine runs
f as s (support.yaml ``runs_as``: an FP8 checkpoint on Ampere runs as W8A16 through Marlin).
A chat service (``tuning="instruct"``) is served an instruction-tuned checkpoint, or one whose
tuning the catalog does not state, never a base one (and ``"base"`` the reverse). Pure data:
no physics, no engine flags (planner/launch/ turns the choice into an engine's command).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from planner.catalog.aliases import Checkpoint
from planner.catalog.schema import Gpu, ModelSpec
from planner.catalog.support import support


@dataclass(frozen=True)
class ServingCheckpoint:
    kind: str                       # release | published | named | quantize
    repository: str | None          # what to serve (None for quantize)
    scheme: str                     # the plan's weight format
    stored: str                     # the format the repository stores (differs from scheme where runs_as maps it)
    release: str                    # the architecture's release format
    tuning: str | None              # instruct | base | None (not stated)
    source: str                     # where the catalog has the fact
    from_repository: str | None = None   # quantize: the checkpoint to quantize from

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def matches_release(self) -> bool:
        return self.kind == "release"


def release_scheme(model: ModelSpec) -> str:
    """The architecture's release format (16-bit unless its checkpoint states another)."""
    return model.release_quantization or "w16a16"


def _candidates(model: ModelSpec) -> list[tuple[str, str, str | None, str, str]]:
    """(repository, stored format, tuning, kind, source) of every checkpoint the catalog knows."""
    out: list[tuple[str, str, str | None, str, str]] = []
    if model.hf_id:
        out.append((model.hf_id, release_scheme(model), model.hf_id_tuning, "release", model.source))
    out += [(c.hf_id, c.scheme, c.tuning, "published", c.source) for c in model.checkpoints]
    return out


def serving_checkpoint(model: ModelSpec, scheme: str, *, gpu: Gpu | None = None, kv: str = "bf16",
                       named: Checkpoint | None = None, tuning: str = "instruct",
                       engine: str = "vllm") -> ServingCheckpoint:
    """The checkpoint that serves ``model`` in ``scheme`` (module docstring)."""
    release = release_scheme(model)

    def serves(stored: str) -> bool:
        if stored == scheme:
            return True
        return gpu is not None and stored != scheme and support(gpu, stored, kv, engine).ok and \
            support(gpu, stored, kv, engine).runs_as == scheme

    if named is not None and named.repository:
        stored = named.scheme or release
        own = model.hf_id is not None and named.repository.lower() == model.hf_id.lower()
        if serves(stored):
            return ServingCheckpoint("release" if own else "named", named.repository, scheme, stored, release,
                                     named.tuning, model.source if own else "the model name the plan was given")
    order = {tuning: 0, None: 1}          # the tuning asked for, else one the catalog does not state; never the other
    found = [c for c in _candidates(model) if serves(c[1]) and c[2] in order]
    found.sort(key=lambda c: (order[c[2]], c[1] != scheme, c[3] != "release"))
    if found:
        repo, stored, tun, kind, source = found[0]
        return ServingCheckpoint(kind, repo, scheme, stored, release, tun, source)
    start = named.repository if named is not None and named.repository else None
    if start is None:
        same = [c for c in _candidates(model) if c[1] == release]
        same.sort(key=lambda c: (order.get(c[2], 2), c[3] != "release"))     # the tuning asked for first
        start = same[0][0] if same else model.hf_id
    return ServingCheckpoint("quantize", None, scheme, scheme, release, None,
                             "no checkpoint in this format in planner/catalog/data/models.yaml", start)
