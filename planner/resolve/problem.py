"""Resolution: from a validated schema to catalog objects. One resolver for `plan` and
`estimate`: the catalog (with the file's overrides), the model, the assumptions (preset,
calibration, the file's own values, in that order) and the prices, each resolved once.
Nothing here evaluates physics or knows a solver."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from planner.catalog.aliases import Checkpoint, scheme_of
from planner.catalog.schema import Gpu
from planner.catalog.store import Catalog, ModelSpec, model_from_hf_config
from planner.catalog.support import SupportTable, support_table
from planner.errors import InputError
from planner.physics.options import PRESETS, Assumptions
from planner.physics.quant import KV_DTYPES, SCHEMES
from planner.physics.space import KV_NAMES, SCHEME_NAMES, GpuTable
from planner.pricing import SpareRule, hourly_over_term
from planner.resolve.calibration import calibrated
from planner.resolve.formats import default_schemes
from planner.resolve.workload import (
    CacheSpec,
    DemandSpec,
    LatencyTarget,
    Lengths,
    Replay,
    demand,
    from_trace,
    lengths,
    prefix_cache,
    targets,
)
from planner.schemas.common import CatalogExtras, HfConfigRef, ModelRef, Offer
from planner.schemas.estimate import EstimateSpec
from planner.schemas.fleet import FleetSpec, FleetWorkload
from planner.schemas.plan import PlanSpec, Slo, Workload
from planner.traces.figures import TraceSummary, minute_swing
from planner.units import HOURS_PER_YEAR
from planner.yamlio import Document

COST_OBJECTIVES = ("cost_per_million_tokens", "cost_per_hour")


@dataclass(frozen=True)
class Slot:
    """One deployment the plan chooses: a workload on a model. A single-model instance has
    one slot; a fleet (later) has one per workload, and disaggregation one per role."""

    name: str
    model: ModelSpec
    input: Lengths
    output: Lengths
    slo: Slo
    targets: tuple[LatencyTarget, ...]  # latency targets under load (docs/load.md)
    demand: DemandSpec | None           # what the slot must serve (None: priced per replica)
    path: str = "workload"              # YAML path of the slot's workload, for located facts
    weight: float = 1.0                 # a fleet's priority of this workload (objective served_demand)
    pools: tuple[str, ...] | None = None   # the pools a fleet workload may run in (None: any)
    disaggregation: str = "never"       # never | always | auto: the roles its rows take (docs/disaggregation.md)
    kv_link: str = "inter"              # the KV link between its pools: inter | intra
    trace: TraceSummary | None = None   # the figures of the trace the workload was read from (docs/workloads.md)
    named: Checkpoint | None = None     # the model name as given: a repository and the format it states
    schemes: tuple[str, ...] | None = None   # the weight formats searched for it (planner/resolve/formats.py)
    cache: CacheSpec | None = None      # its prefix cache (docs/workloads.md section 7; None: none)
    replay: Replay | None = None        # its trace's requests, replayed by the simulator (None: sampled lengths)

    @property
    def off(self) -> bool:
        """A stated demand of zero (a schedule's period where the workload is off): it needs no
        replica, and no target binds it there."""
        return self.demand is not None and float(self.demand.value) == 0.0

    @property
    def cached_tokens(self) -> float:
        """Mean prompt tokens per request served by the prefix cache (0 without one)."""
        return 0.0 if self.cache is None else self.cache.cached_tokens

    @property
    def input_tokens(self) -> float:
        return self.input.mean

    @property
    def output_tokens(self) -> float:
        return self.output.mean

    @property
    def demand_tokens_per_s(self) -> float | None:
        """Output tokens/s of an open-loop demand (None for none or a closed loop)."""
        return self.demand.value if self.demand is not None and self.demand.kind == "tokens_per_s" else None


@dataclass(frozen=True)
class Running:
    """A deployment running today (a fleet's ``current``): replicas of one configuration of
    one slot, with catalog names."""

    slot: int
    gpu: str
    scheme: str
    kv: str
    tp: int
    pp: int
    ep: int
    replicas: int
    path: str


@dataclass(frozen=True)
class Problem:
    """A resolved instance: the spec with names turned into catalog objects, one slot per
    deployment to choose, and prices kept apart from the physics (a price change re-runs no
    physics: planner/candidates applies them to the evaluated table)."""

    spec: PlanSpec | FleetSpec
    slots: tuple[Slot, ...]
    gpus: tuple[Gpu, ...]
    table: GpuTable
    prices: np.ndarray                  # $/GPU-hour per GPU of ``table`` (NaN: no price)
    price_sources: tuple[str, ...]      # where each price came from
    assumptions: Assumptions
    support: SupportTable | None = None     # [gpu, scheme, kv] over SCHEME_NAMES x KV_NAMES for the search's engine
    calibration: str = "none"
    excluded: dict[str, str] = field(default_factory=dict)   # GPU id -> why it is not searched
    file: str | None = None
    max_configs: int = 1                # configurations one slot may split its traffic over (a fleet: >= 1)
    current: tuple[Running, ...] = ()   # a fleet's deployments running today
    calibration_notes: tuple[str, ...] = ()   # GPUs the calibration fits by its global values only, and why
    offers: tuple[Offer | None, ...] = ()     # per GPU of ``table``: the offer it is priced by (prices.offers), or None
    notes: tuple[str, ...] = ()         # what a result must say of how the instance was read (a profile's peak)

    @property
    def objective(self) -> str:
        """The objective the candidate table is built for (a fleet's first phase)."""
        phases = getattr(self.spec, "phases", None)
        return phases[0] if phases else str(self.spec.objective)

    def with_prices(self, usd_per_gpu_hour: dict[str, float]) -> Problem:
        """The same problem with some prices changed: the what-if a price sweep needs."""
        prices = self.prices.copy()
        sources = list(self.price_sources)
        for gid, usd in usd_per_gpu_hour.items():
            i = self.table.ids.index(gid)
            prices[i], sources[i] = usd, "what-if"
        return replace(self, prices=prices, price_sources=tuple(sources))

    def owned(self, g: int) -> bool:
        """GPU ``g`` of the table is owned: it is counted against ``limits.inventory`` and costs
        its running cost (a type that may also be rented has a second entry, ``gpu@rented``)."""
        return self.table.ids[g] in self.spec.limits.inventory

    def offer(self, g: int) -> Offer | None:
        """The offer (``prices.offers``) GPU entry ``g`` is priced by, or None."""
        return self.offers[g] if self.offers else None

    def offer_kind(self, g: int) -> str:
        """How GPU entry ``g`` is paid for: owned, its offer's kind (on_demand, spot, commit_1y,
        commit_3y), or rented (one price, no offer list)."""
        o = self.offer(g)
        return "owned" if self.owned(g) else o.kind if o is not None else "rented"

    def committed(self, g: int) -> bool:
        """GPU entry ``g`` is committed capacity, paid for whether it runs or not (owned, or a
        1- or 3-year commitment over its term), rather than burst capacity paid per hour it runs
        (on-demand, spot, a rented price). A schedule over periods pays committed GPUs in every
        period (docs/workloads.md "Prices by kind")."""
        o = self.offer(g)
        return self.owned(g) or (o is not None and o.term is not None)

    def spare_rule(self, g: int) -> SpareRule | None:
        """The preemption rule of a spot entry (None for any other)."""
        o = self.offer(g)
        if o is None or o.preemption is None:
            return None
        r = o.preemption
        return SpareRule(r.spare_replicas, r.availability, r.replica_availability)

    def price_kind(self, g: int) -> str | None:
        """How GPU ``g``'s price was set, in words: owned (and from which input), given in the
        instance, an offer (its kind and where it is listed), a what-if, no price, or the
        catalog's kind (on-demand, reserved, ...)."""
        source = self.price_sources[g]
        if source == "what-if":
            return "what-if"
        if np.isnan(self.prices[g]):
            return "no price"
        if self.owned(g):
            return f"owned, {source}"
        o = self.offer(g)
        if o is not None:
            return f"{o.kind}, {source}"
        if source.startswith("prices."):
            return "given in the instance"
        return self.gpus[g].price_kind

    def price_date(self, g: int) -> str | None:
        """When the catalog's price was read (None for any other price)."""
        catalog = not self.price_sources[g].startswith("prices.") and self.price_sources[g] not in ("what-if", "none")
        return self.gpus[g].price_date if catalog and not self.owned(g) else None

    def unsupported(self) -> list[dict[str, str]]:
        """The searched (GPU, quantization, KV dtype) combinations the engine does not run, with why."""
        if self.support is None:
            return []
        s = self.spec.search
        out = []
        for g, gpu in enumerate(self.gpus):
            for q in s.quantizations or []:
                for kv in s.kv_dtypes:
                    i, k = SCHEME_NAMES.index(q), KV_NAMES.index(kv)
                    if not self.support.ok[g, i, k]:
                        out.append({"gpu": gpu.id, "quantization": q, "kv_dtype": kv, "engine": s.engine,
                                    "reason": self.support.reasons[int(self.support.reason[g, i, k])]})
        return out

    def inputs(self) -> dict[str, Any]:
        """What the result must record to be rebuilt: models, assumptions, calibration, prices
        and the catalog's digest."""
        return {"models": {s.name: s.model.id or s.model.name for s in self.slots},
                "model_notes": {s.name: list(s.model.notes) for s in self.slots if s.model.notes},
                "calibration_notes": list(self.calibration_notes),
                "assumptions": self.assumptions.model_dump(), "calibration": self.calibration,
                "prices_usd_per_gpu_hour": {gid: (None if np.isnan(p) else float(p))
                                            for gid, p in zip(self.table.ids, self.prices)},
                "price_sources": dict(zip(self.table.ids, self.price_sources)),
                "price_kinds": {g.id: self.price_kind(i) for i, g in enumerate(self.gpus)},
                "price_dates": {g.id: self.price_date(i) for i, g in enumerate(self.gpus)},
                "offers": {g.id: self._offer_record(i) for i, g in enumerate(self.gpus)},
                "engine": self.spec.search.engine,
                "catalog_digest": catalog_digest(self.gpus),
                "workloads": {s.name: _workload(s) for s in self.slots}}

    def _offer_record(self, g: int) -> dict[str, Any]:
        """What a result records of entry ``g``'s offer: its kind, committed or burst, a
        commitment's term and upfront payment, a spot offer's preemption rule, provider, region."""
        o = self.offer(g)
        out: dict[str, Any] = {"kind": self.offer_kind(g), "committed": self.committed(g)}
        if o is not None:
            out |= {"term_years": o.term, "upfront_usd_per_gpu": o.upfront_usd_per_gpu or None,
                    "preemption": o.preemption.model_dump(exclude_none=True) if o.preemption else None,
                    "provider": o.provider, "region": o.region}
        return out


def _by_reason(excluded: dict[str, str]) -> list[tuple[str, str]]:
    """(reason, the GPUs it leaves out) per distinct reason, in first-seen order."""
    by_reason: dict[str, list[str]] = {}
    for gid, why in excluded.items():
        by_reason.setdefault(why, []).append(gid)
    return [(why, ", ".join(gids)) for why, gids in by_reason.items()]


def _workload(s: Slot) -> dict[str, Any]:
    """What a launch command and a benchmark need of a slot (planner/launch/)."""
    m, d = s.model, s.demand
    return {"model": m.id or m.name, "hf_id": m.hf_id, "num_attention_heads": m.num_attention_heads,
            "num_kv_heads": m.num_kv_heads, "num_experts": m.moe.num_experts if m.moe else 0,
            "max_context_tokens": m.max_context_tokens, "input_tokens_mean": s.input.mean,
            "input_tokens_max": s.input.max, "output_tokens_mean": s.output.mean, "output_tokens_max": s.output.max,
            "input_lengths": {"kind": s.input.kind, **s.input.tail()},
            "output_lengths": {"kind": s.output.kind, **s.output.tail()},
            "checkpoint": None if s.named is None else {"repository": s.named.repository, "scheme": s.named.scheme,
                                                        "scheme_from": s.named.scheme_from, "tuning": s.named.tuning},
            "input_tokens_cv2": s.input.cv2, "output_tokens_cv2": s.output.cv2,
            "demand": None if d is None else {"kind": d.kind, "value": d.value, "requests_per_s": d.requests_per_s,
                                              "arrival_cv2": d.arrival_cv2},
            "trace": None if s.trace is None else s.trace.to_dict(),
            # only where the workload has a prefix cache: a plan without one records what it did before
            **({} if s.cache is None else {"prefix_cache": s.cache.to_dict()})}


def catalog_digest(gpus: tuple[Gpu, ...]) -> str:
    """sha256 of the searched GPUs' catalog entries (a plan names the data it used)."""
    text = json.dumps([g.model_dump(mode="json") for g in gpus], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve(spec: PlanSpec, doc: Document | None = None, calibration: str | None = None,
            catalog: Catalog | None = None) -> Problem:
    """A plan spec with every name turned into catalog objects and every assumption fixed.
    ``catalog``: the resolved catalog files (a sweep ships it to its workers once)."""
    where: dict[str, Any] = {"file": doc.file if doc else None}
    catalog = resolve_catalog_with_extras(spec.catalog, spec.extra_catalog, doc, catalog)
    model = resolve_model(spec.model, catalog, doc, ("model",))
    w = spec.workload
    slot = _slot("main", model, w, spec.slo, "workload", where)
    slot = replace(slot, named=_named(spec.model, catalog), disaggregation=spec.disaggregation, kv_link=spec.kv_link)
    priced = spec.objective in COST_OBJECTIVES or spec.limits.budget_usd_per_hour is not None
    problem = _resolve_shared(spec, doc, calibration, catalog, (slot,), priced)
    return replace(problem, max_configs=spec.max_configurations())


def resolve_fleet(spec: FleetSpec, doc: Document | None = None, calibration: str | None = None,
                  catalog: Catalog | None = None) -> Problem:
    """A fleet spec: one slot per workload (its model, lengths, SLOs, demand and weight), the
    shared search, limits and prices resolved as for one model, the current fleet matched
    to catalog names. Every fleet objective is priced, so every searched GPU needs a price."""
    spec = spec.checked(doc)
    where: dict[str, Any] = {"file": doc.file if doc else None}
    catalog = resolve_catalog_with_extras(spec.catalog, spec.extra_catalog, doc, catalog)
    spec, catalog = _with_pools(spec, catalog, where)
    slots = []
    for i, w in enumerate(spec.workloads):
        model = resolve_model(w.model, catalog, doc, ("workloads", i, "model"))
        slot = _slot(w.name, model, w, w.slo, f"workloads[{i}]", where)
        slots.append(replace(slot, weight=w.weight, pools=tuple(w.pools) if w.pools else None,
                             disaggregation=w.disaggregation or spec.disaggregation, kv_link=spec.kv_link,
                             named=_named(w.model, catalog)))
    problem = _resolve_shared(spec, doc, calibration, catalog, tuple(slots), True)
    current = []
    names = [w.name for w in spec.workloads]
    for i, d in enumerate(spec.current):
        gid = catalog.gpu_id(d.gpu, path=f"current[{i}].gpu", **where)
        gid = f"{gid}@{d.pool}" if d.pool else gid
        q = scheme_of(d.quantization, path=f"current[{i}].quantization", **where)
        if q not in SCHEMES:
            raise InputError("unknown quantization", path=f"current[{i}].quantization", value=d.quantization,
                             accepted=", ".join(SCHEMES), **where)
        if d.kv_dtype not in KV_DTYPES:
            raise InputError("unknown KV dtype", path=f"current[{i}].kv_dtype", value=d.kv_dtype,
                             accepted=", ".join(KV_DTYPES), **where)
        current.append(Running(slot=names.index(d.workload), gpu=gid, scheme=q, kv=d.kv_dtype, tp=d.tp, pp=d.pp,
                               ep=d.ep, replicas=d.replicas, path=f"current[{i}]"))
    return replace(problem, max_configs=spec.max_configurations_per_workload, current=tuple(current))


def _with_pools(spec: FleetSpec, catalog: Catalog, where: dict[str, Any]) -> tuple[FleetSpec, Catalog]:
    """A fleet with pools (regions), as one inventory over pool copies of the GPUs: each owned
    GPU type of a pool becomes the catalog entry ``gpu@pool`` (the same hardware, owned: an
    owned price given for the GPU applies in every pool unless one is given for ``gpu@pool``), so
    every replica lies in one pool and each pool's count is an inventory row. Searched: the
    pool copies of the GPUs ``search.gpus`` names (all, by default), and with
    ``rent_outside_inventory`` the rentable GPUs themselves."""
    if not spec.pools:
        return spec, catalog
    gpus = dict(catalog.gpus)
    inventory: dict[str, int] = {}
    keyed: dict[str, dict[str, float]] = {}
    for field_name in ("usd_per_gpu_hour", "owned_usd_per_gpu_hour"):
        keyed[field_name] = {}
        for k, v in getattr(spec.prices, field_name).items():     # "gpu" or "gpu@pool" (a price in one pool)
            base, _, pool = k.partition("@")
            if pool and pool not in spec.pools:
                raise InputError("not a pool of this fleet", path=f"prices.{field_name}.{k}", value=k,
                                 accepted=", ".join(spec.pools), **where)
            gid = catalog.gpu_id(base, path=f"prices.{field_name}.{k}", **where)
            keyed[field_name][f"{gid}@{pool}" if pool else gid] = v
    for pool, owned in spec.pools.items():
        for name, n in owned.items():
            gid = catalog.gpu_id(name, path=f"pools.{pool}.{name}", **where)
            copy_id = f"{gid}@{pool}"
            gpus[copy_id] = catalog.gpus[gid].model_copy(update={"id": copy_id})
            inventory[copy_id] = n
    s, lim = spec.search, spec.limits
    wanted = sorted(catalog.gpus) if s.gpus is None else \
        [catalog.gpu_id(n, path=f"search.gpus[{i}]", **where) for i, n in enumerate(s.gpus)]
    names = [g for g in inventory if g.split("@", 1)[0] in wanted]
    names += wanted if lim.rent_outside_inventory else []
    spec = spec.model_copy(update={"search": s.model_copy(update={"gpus": names}),
                                   "limits": lim.model_copy(update={"inventory": inventory}),
                                   "prices": spec.prices.model_copy(update=keyed)})
    return spec, Catalog(gpus=gpus, models=catalog.models)


def _slot(name: str, model: ModelSpec, w: Workload | FleetWorkload, slo: Slo, path: str,
          where: dict[str, Any]) -> Slot:
    """A workload's slot: its lengths and demand, stated or from its trace."""
    summary, requests, replay = None, None, None
    goals = targets(slo, _slo_path(path))
    if w.trace is not None:
        t = from_trace(w, where["file"], path, goals, slo.max_utilization)
        isl, osl, need, summary, requests, replay = t.input, t.output, t.demand, t.summary, t.requests, t.replay
    else:
        try:
            isl = lengths(w.input_tokens, f"{path}.input_tokens")     # type: ignore[arg-type]
            osl = lengths(w.output_tokens, f"{path}.output_tokens")   # type: ignore[arg-type]
        except ValueError as exc:
            raise InputError(str(exc).split(": ", 1)[1], path=str(exc).split(": ", 1)[0], **where) from None
        need = demand(w.demand, osl)
    if isl.max + osl.max > model.max_context_tokens:
        longest = "the trace's longest prompt + longest output" if summary else "input + output tokens"
        raise InputError(f"{longest} exceed {model.name}'s context of {model.max_context_tokens}",
                         path=f"{path}.{'trace' if summary else 'input_tokens'}", value=isl.max + osl.max,
                         accepted=f"<= {model.max_context_tokens} in total", **where)
    cache = prefix_cache(w.prefix_cache, isl, summary, w.cache_blocks, where["file"], path, requests)
    return Slot(name=name, model=model, input=isl, output=osl, slo=slo, targets=goals,
                demand=need, path=path, trace=summary, cache=cache, replay=replay)


def _slo_path(path: str) -> str:
    return "slo" if path == "workload" else f"{path}.slo"


def _resolve_shared(spec: Any, doc: Document | None, calibration: str | None, catalog: Catalog,
                    slots: tuple[Slot, ...], priced: bool) -> Problem:
    """What a plan and a fleet share: the searched GPUs (names as people type them), the
    inventory and prices keyed by catalog id, the quantizations (quality floor), the
    assumptions with the calibration, and the support table of the search's engine."""
    where: dict[str, Any] = {"file": doc.file if doc else None}
    assumptions = resolve_assumptions(spec.preset, spec.assumptions, doc, ("assumptions",))
    s = spec.search
    # GPU names as people type them (H100, A100-80GB, MI300X) -> catalog ids (planner/catalog/aliases.py)
    names = [catalog.gpu_id(n, path=f"search.gpus[{i}]", **where) for i, n in enumerate(s.gpus)] \
        if s.gpus is not None else sorted(catalog.gpus)
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError("a GPU is listed twice (under two spellings)", path="search.gpus", value=dup, **where)
    inventory = {catalog.gpu_id(k, path=f"limits.inventory.{k}", **where): v for k, v in spec.limits.inventory.items()}
    keyed = {f: {catalog.gpu_id(k, path=f"prices.{f}.{k}", **where): v for k, v in getattr(spec.prices, f).items()}
             for f in ("usd_per_gpu_hour", "owned_usd_per_gpu_hour", "offers")}
    if inventory != spec.limits.inventory or any(v != getattr(spec.prices, f) for f, v in keyed.items()):
        spec = spec.model_copy(update={"limits": spec.limits.model_copy(update={"inventory": inventory}),
                                       "prices": spec.prices.model_copy(update=keyed)})
    owned_types = {g.split("@", 1)[0] for g in inventory} | set(inventory)
    for k in keyed["owned_usd_per_gpu_hour"]:
        if k not in owned_types:
            raise InputError("an owned price for a GPU that limits.inventory does not list",
                             path=f"prices.owned_usd_per_gpu_hour.{k}", value=k,
                             accepted=", ".join(sorted(owned_types)) or "GPUs listed in limits.inventory "
                             "(a rented GPU's price goes in prices.usd_per_gpu_hour)", **where)
    if s.quantizations is not None:  # names as people type them (awq, fp8-dynamic, nvfp4) -> schemes (docs/support.md)
        s = s.model_copy(update={"quantizations": [
            scheme_of(q, path=f"search.quantizations[{i}]", **where) for i, q in enumerate(s.quantizations)]})
    else:    # per model: its release format and what can be made or is published from it, above the quality floor
        floor = s.min_weight_bits if s.min_weight_bits is not None else 8
        slots = tuple(replace(x, schemes=default_schemes(x.model, x.named, floor)) for x in slots)
        s = s.model_copy(update={"quantizations": [q for q in SCHEME_NAMES if any(q in x.schemes for x in slots
                                                                                  if x.schemes)]})
    if s.min_weight_bits is not None:
        releases = {x.model.release_quantization for x in slots}
        low = [q for q in s.quantizations or [] if SCHEMES.get(q) and SCHEMES[q].bits_per_weight < s.min_weight_bits
               and q not in releases]
        if low:
            raise InputError(f"{low[0]} has weights below search.min_weight_bits", path="search.quantizations",
                             value=low[0], accepted=f"schemes of at least {s.min_weight_bits} bits per weight",
                             **where)
    spec = spec.model_copy(update={"search": s})
    for i, q in enumerate(s.quantizations or []):
        if q not in SCHEMES:
            raise InputError("unknown quantization", path=f"search.quantizations[{i}]", value=q,
                             accepted=", ".join(SCHEMES), **where)
    for i, k in enumerate(s.kv_dtypes):
        if k not in KV_DTYPES:
            raise InputError("unknown KV dtype", path=f"search.kv_dtypes[{i}]", value=k,
                             accepted=", ".join(KV_DTYPES), **where)
    lim = spec.limits
    excluded: dict[str, str] = {}
    gpus: list[Gpu] = []
    priced_gpus: list[tuple[float | None, str]] = []
    offered = offer_entries(spec.prices.offers, where)
    kept_offers: list[Offer | None] = []
    for name in _entries(names, lim.inventory, lim.rent_outside_inventory, spec.prices.offers):
        base = name.split("@", 1)[0]
        g = catalog.gpus[name] if name in catalog.gpus else catalog.gpus[base].model_copy(update={"id": name})
        owned = name in lim.inventory
        offer, source = offered.get(name, (None, ""))
        usd, source = (offer_price(offer), source) if offer is not None else _price(g, owned, spec)
        if not g.peak_dense_flops_per_s:
            excluded[name] = "no peak FLOP/s in the catalog (give one in a catalog override)"
        elif lim.inventory and not owned and not lim.rent_outside_inventory:
            excluded[name] = "not in limits.inventory (an inventory lists the GPUs owned; set " \
                             "limits.rent_outside_inventory: true to rent others)"
        elif priced and usd is None:
            excluded[name] = _unpriced(owned, bool(lim.inventory)) if offer is None else \
                f"no price: left out of a question with a budget or a cost objective; add {source}.usd_per_gpu_hour"
        elif lim.power_cap_w is not None and g.power_w is None:
            excluded[name] = "no power_w in the catalog, so limits.power_cap_w cannot be checked (give one in a " \
                             "catalog override)"
        else:
            gpus.append(g)
            priced_gpus.append((usd, source))
            kept_offers.append(offer)
    if not gpus:
        raise InputError("no GPU left to search: " + "; ".join(f"{gids}: {why}" for why, gids in _by_reason(excluded)),
                         path="search.gpus", **where)
    assumptions, scales, cal_notes = calibrated(assumptions, spec.assumptions, calibration, gpus)
    # a price of 0 is a price (a GPU whose running cost is paid elsewhere), not a missing one
    prices = np.array([np.nan if usd is None else usd for usd, _ in priced_gpus], dtype=float)
    sources = tuple(source for _, source in priced_gpus)
    table = support_table(gpus, SCHEME_NAMES, KV_NAMES, s.engine)
    return Problem(spec=spec, slots=slots, gpus=tuple(gpus), table=GpuTable.build(gpus, scales), prices=prices,
                   price_sources=sources, assumptions=assumptions, support=table, calibration=calibration or "none",
                   excluded=excluded, file=doc.file if doc else None, calibration_notes=tuple(cal_notes),
                   offers=tuple(kept_offers), notes=tuple(n for n in map(_swing_note, slots) if n))


def _swing_note(s: Slot) -> str | None:
    """A trace planned at its window's mean rate whose busiest minute is beyond Poisson noise
    (``minute_swing``): the plan is one steady state, the trace's rate is not."""
    if s.trace is None or s.replay is None:
        return None
    a = s.trace.arrivals
    swing = minute_swing(a.rate_per_s, s.trace.peak_minute_per_s, a.span_s)
    if swing is None or swing[0] <= swing[1] or a.rate_per_s is None or s.trace.peak_minute_per_s is None:
        return None
    return (f"{s.path}.trace: planned at the window's mean rate, {a.rate_per_s:.3g} requests/s; its busiest minute "
            f"has {s.trace.peak_minute_per_s:.3g} ({s.trace.peak_minute_per_s / a.rate_per_s:.2f}x, {swing[0]:.1f} "
            f"Poisson standard deviations above the mean; noise alone stays below about {swing[1]:.1f}): the rate "
            "changes, and a plan at the mean may not hold through the busy stretch; plan it as a window, or a profile "
            "(docs/workloads.md section 3, 'A changing rate')")


RENTED = "rented"
"""The pool of an owned GPU type's rented units: with ``rent_outside_inventory`` the type is
searched twice, owned (its id, at most the inventory, at its running cost) and rented
(``gpu@rented``, at its rental price), so a fleet may use both."""


def _entries(names: list[str], inventory: dict[str, int], renting: bool, offers: dict[str, list[Offer]]) -> list[str]:
    """The searched GPU entries: each GPU, and after an owned type that may also be rented,
    its rented copy; a rented GPU with offers (``prices.offers``) is one entry per offer,
    ``gpu@<offer label>``, instead of its one rented entry."""
    out = []
    for name in names:
        owned = name in inventory
        rented = [f"{name}@{o.label}" for o in offers.get(name, [])] or [name if not owned else f"{name}@{RENTED}"]
        out += ([name] if owned else []) + (rented if renting or not owned else [])
    return out


def offer_entries(offers: dict[str, list[Offer]], where: dict[str, Any]) -> dict[str, tuple[Offer, str]]:
    """Each offer's searched entry id -> (the offer, its YAML path); two offers of one GPU with
    the same kind, provider and region are refused (they would be the same entry)."""
    out: dict[str, tuple[Offer, str]] = {}
    for gid, listed in offers.items():
        if "@" in gid:
            raise InputError("offers are listed per GPU type, not per pool", path=f"prices.offers.{gid}", value=gid,
                             accepted=f"{gid.split('@', 1)[0]} (a pool's GPUs are owned: limits.inventory)", **where)
        for i, o in enumerate(listed):
            key, path = f"{gid}@{o.label}", f"prices.offers.{gid}[{i}]"
            if key in out:
                raise InputError("two offers of one GPU with the same kind, provider and region", path=path,
                                 value=o.label, accepted=f"offers that differ in kind, provider or region "
                                 f"(the first is {out[key][1]})", **where)
            out[key] = (o, path)
    return out


def offer_price(o: Offer) -> float | None:
    """$/GPU-hour of an offer: its hourly rate, a commitment's upfront payment spread over its
    term (None: the offer states no price)."""
    term = o.term
    if o.usd_per_gpu_hour is None or term is None:
        return o.usd_per_gpu_hour
    return hourly_over_term(o.usd_per_gpu_hour, o.upfront_usd_per_gpu, term, HOURS_PER_YEAR)


def _price(g: Gpu, owned: bool, spec: Any) -> tuple[float | None, str]:
    """$/GPU-hour of one searched entry and where it comes from (docs/instances.md "Prices").
    Owned: ``prices.owned_usd_per_gpu_hour`` (the entry, then its GPU), else the TCO's running
    cost (and capital if it gives one), else, when nothing is rented, ``prices.usd_per_gpu_hour``;
    never the catalog's rental price. Rented: ``prices.usd_per_gpu_hour``, else (no inventory)
    the TCO, as if bought, else the catalog's price. None: no price."""
    prices, renting = spec.prices, spec.limits.rent_outside_inventory
    base = g.id.split("@", 1)[0]
    keys = (g.id, base)
    if owned:
        for k in keys:
            if k in prices.owned_usd_per_gpu_hour:
                return prices.owned_usd_per_gpu_hour[k], "prices.owned_usd_per_gpu_hour"
        if prices.tco is not None:
            capital = " and capital" if prices.tco.capex_usd_per_node is not None else ""
            return prices.tco.usd_per_gpu_hour(g), f"prices.tco running cost{capital}"
        if not renting:
            for k in keys:
                if k in prices.usd_per_gpu_hour:
                    return prices.usd_per_gpu_hour[k], "prices.usd_per_gpu_hour"
        return None, "none"
    if base in prices.usd_per_gpu_hour:
        return prices.usd_per_gpu_hour[base], "prices.usd_per_gpu_hour"
    if prices.tco is not None and not spec.limits.inventory:
        return prices.tco.usd_per_gpu_hour(g), "prices.tco"
    if g.price_usd_per_gpu_hour is None:
        return None, "none"
    return g.price_usd_per_gpu_hour, g.price_source or "catalog"


def _unpriced(owned: bool, inventory: bool) -> str:
    """Why an entry without a price is left out, and the YAML that prices it."""
    if owned:
        return ("owned, with no running cost given: left out of a question with a budget or a cost objective "
                "(the catalog's price is a rental price); add prices.owned_usd_per_gpu_hour: {<gpu>: <$/GPU-hour>} "
                "or prices.tco: {usd_per_kwh: ..., pue: ..., hosting_usd_per_node_month: ...}")
    return ("no price: left out of a question with a budget or a cost objective; add "
            "prices.usd_per_gpu_hour: {<gpu>: <$/GPU-hour>}" + ("" if inventory else " or prices.tco"))


def resolve_catalog_with_extras(files: list[str], extras: CatalogExtras | None, doc: Document | None,
                                catalog: Catalog | None = None) -> Catalog:
    """The catalog an input file names (default: the shipped one), plus its inline additions."""
    if catalog is None:
        catalog = resolve_catalog(files, Path(doc.file).parent if doc and doc.file else None)
    if extras and (extras.gpus or extras.models):
        catalog = catalog.extended(extras.gpus, extras.models, doc or Document(None, "<input>"), ("extra_catalog",))
    return catalog


@dataclass(frozen=True)
class EstimateInputs:
    """What one `estimate` needs, resolved: model, GPU, assumptions, calibration, price."""

    model: ModelSpec
    gpu: Gpu
    assumptions: Assumptions
    efficiency_scale: dict[str, tuple[float, float, float]]
    price_usd_per_gpu_hour: float | None
    price_source: str | None
    quantization: str = "w16a16"   # as given, else the checkpoint's: the format its name states, or its release format
    calibration_notes: tuple[str, ...] = ()
    quantization_from: str = "given"   # given | name (-FP8, -NVFP4) | release (the checkpoint as published)
    named: Checkpoint | None = None    # the model name as given: a repository and the format it states


def resolve_estimate(spec: EstimateSpec, doc: Document | None = None, catalog: Catalog | None = None,
                     calibration: str | None = None) -> EstimateInputs:
    where: dict[str, Any] = {"file": doc.file if doc else None}
    catalog = resolve_catalog_with_extras(spec.catalog, spec.extra_catalog, doc, catalog)
    if spec.model is None:
        raise InputError("no model given", path="model",
                         accepted="a catalog id (--model), {hf_config: path} or an inline architecture", **where)
    if spec.gpu is None:
        raise InputError("no GPU given", path="gpu", accepted=", ".join(sorted(catalog.gpus)), **where)
    model = resolve_model(spec.model, catalog, doc, ("model",))
    gpu = catalog.gpu(spec.gpu, path="gpu", **where)
    assumptions = resolve_assumptions(spec.preset, spec.assumptions, doc, ("assumptions",))
    assumptions, scales, cal_notes = calibrated(assumptions, spec.assumptions, calibration, [gpu])
    price, source = spec.price_usd_per_gpu_hour, None
    if price is not None:
        source = "price_usd_per_gpu_hour in the input"
    elif spec.tco is not None:
        price, source = spec.tco.usd_per_gpu_hour(gpu), "TCO in the input"
    quantization, origin = spec.quantization, "given"
    named = catalog.checkpoint(spec.model, path="model", **where) if isinstance(spec.model, str) else None
    if "quantization" not in spec.model_fields_set:
        if named is not None and named.scheme:
            # Qwen/Qwen3-32B-FP8: the checkpoint is FP8; deepseek-ai/DeepSeek-R1: released in FP8
            quantization, origin = named.scheme, named.scheme_from or "release"
        elif model.release_quantization:          # a config.json whose quantization_config states it
            quantization, origin = model.release_quantization, "release"
        else:
            origin = "release"
    return EstimateInputs(model, gpu, assumptions, scales, price, source, quantization=quantization,
                          calibration_notes=tuple(cal_notes), quantization_from=origin, named=named)


def _named(ref: ModelRef, catalog: Catalog) -> Checkpoint | None:
    """The checkpoint a model name means (a repository, the format it states), or None for a
    config file or an inline architecture."""
    return catalog.checkpoint(ref) if isinstance(ref, str) else None


def resolve_catalog(files: list[str], base: Path | None) -> Catalog:
    if not files:
        return Catalog.default()
    paths = [str((base / f) if base and not Path(f).is_absolute() else f) for f in files]
    return Catalog.load(tuple(paths))


def resolve_model(ref: ModelRef, catalog: Catalog, doc: Document | None, path: tuple) -> ModelSpec:
    where: dict[str, Any] = {"file": doc.file if doc else None, "path": ".".join(map(str, path)) or None}
    if isinstance(ref, str):
        return catalog.model(ref, **where)
    if isinstance(ref, HfConfigRef):
        base = Path(doc.file).parent if doc else Path.cwd()
        target = Path(ref.hf_config)
        target = target if target.is_absolute() else base / target
        if not target.exists():
            raise InputError("hf_config file not found", file=where["file"], path=f"{where['path']}.hf_config",
                             value=str(target), accepted="a path to a config.json, relative to this file")
        return model_from_hf_config(target, where=where, serve_towers=ref.serve_towers)
    return ref


def resolve_assumptions(preset: str, overrides: dict[str, Any] | None, doc: Document | None,
                        path: tuple) -> Assumptions:
    if preset not in PRESETS:
        raise InputError("unknown preset", file=doc.file if doc else None,
                         path=".".join(path[:-1] + ("preset",)) or "preset",
                         value=preset, accepted=", ".join(PRESETS))
    base = PRESETS[preset]
    if not overrides:
        return base
    merged = base.model_dump() | overrides
    # assumptions given by flags have no file: their errors are located on the command line
    return (doc or Document(data=merged, file="<command line>")).validate(Assumptions, merged, path)
