"""A structure-aware fuzzer over the documented instance schema (issue 12).

Generated instances are tiny (1-3 GPUs, 1-2 quantizations, short TP/PP lists, small
batches) so that a solve takes milliseconds, and hostile where the schema allows it:
extreme but valid numbers (1e-9 .. the schema's maxima), zero prices and budgets,
duplicated list entries, empty lists, every objective, SLOs, limits and demands that
bind or not. Three layers, each counted (printed at the end of the run by conftest.py):

- schema: every generated document goes through the schema; a refusal must be an
  InputError (a located message), never another exception.
- backends: every document the schema accepts is planned by all four backends through the
  Python API; none may raise anything but InputError, and where one returns a plan all
  agree on the status and on the first plan's objective value (relative 1e-6). One case is
  one (document, backend) solve: the run needs >= 2,000 of them.
- cli: a smaller number of the same documents through `planner plan` (CliRunner) must end
  with exit 0, 1 or 2 and no traceback.

Inputs of the classes another change fixes are filtered out before solving and counted
(re-enable after that merge): class 2 (an empty search list) and class 7 (a GPU without
power_w under a power cap); see the xfail tests at the end.
"""

from __future__ import annotations

import collections
import math
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.candidates.cache import PhysicsCache
from planner.candidates.table import build_candidates
from planner.catalog.store import Catalog
from planner.cli.root import app
from planner.errors import InputError
from planner.plan.solve import plan, solve
from planner.resolve.problem import resolve
from planner.schemas.plan import PlanSpec
from planner.yamlio import Document

COUNTS: collections.Counter = collections.Counter()
"""What the fuzzer ran; printed by tests/conftest.py's terminal summary."""

BACKENDS = ("exhaustive", "cpsat", "milp", "highs")
MODELS = ["llama-3.1-8b", "llama-2-7b", "mixtral-8x7b", "gpt-j-6b"]
# a10g: no power_w; gb200: no price
GPUS = ["h100-sxm", "l40s", "l4", "a100-80gb", "rtx-4090", "mi300x", "a10g", "gb200"]
SCHEMES = ["w16a16", "w8a16", "w4a16", "w8a8-fp8", "fp4"]
EXAMPLES = int(os.environ.get("PLANNER_FUZZ_EXAMPLES", "1500"))
CLI_EXAMPLES = int(os.environ.get("PLANNER_FUZZ_CLI_EXAMPLES", "40"))
MIN_BACKEND_CASES = 2000 if EXAMPLES >= 1500 else 0
NO_POWER_W = {"a10g"}
CACHE = PhysicsCache()
"""The physics of every case computed so far, kept across the generated documents, which draw
their models, GPUs, schemes, lengths and batches from short lists: a case seen before is read
back (planner/candidates/cache.py: the same figures, bit for bit; tests/test_candidate_cache.py),
a new one (every extreme SLO and demand among them) computed as without it."""


def _listing(items, max_size: int, *, allow_empty: bool = True):
    """A short list from ``items``, sometimes empty (duplicates are added per document)."""
    base = st.lists(st.sampled_from(items), min_size=1, max_size=max_size, unique=True)
    if not allow_empty:
        return base
    return st.integers(0, 19).flatmap(lambda k: st.just([]) if k == 0 else base)


def _extreme(low: float, high: float, *, zero: bool = False):
    """Finite numbers in [low, high], biased to the ends and round values."""
    picks = [low, high, high * 0.999999, math.sqrt(low * high) if low > 0 else 1.0]
    if zero:
        picks.append(0.0)
    return st.one_of(st.sampled_from(picks), st.floats(low, high, allow_nan=False, allow_infinity=False))


@st.composite
def documents(draw) -> dict:
    gpus = draw(_listing(GPUS, 3))
    objective = draw(st.sampled_from(["cost_per_million_tokens", "cost_per_hour", "tpot", "ttft", "throughput",
                                      "gpus"]))
    doc: dict = {
        "schema_version": 1,
        "model": draw(st.sampled_from(MODELS)),
        "workload": {"input_tokens": draw(st.sampled_from([1, 7, 128, 2048])),
                     "output_tokens": draw(st.sampled_from([1, 2, 64, 1024]))},
        "search": {"gpus": gpus, "quantizations": draw(_listing(SCHEMES, 2)),
                   "kv_dtypes": draw(_listing(["bf16", "fp8"], 2, allow_empty=False)),
                   "tp": draw(_listing([1, 2, 4, 8], 3, allow_empty=False)),
                   "pp": draw(_listing([1, 2], 2, allow_empty=False)),
                   "max_batch": draw(st.sampled_from([1, 2, 16, 64]))},
        "objective": objective,
        "top_k": draw(st.sampled_from([1, 2])),
    }
    if draw(st.booleans()):
        doc["search"]["batch_levels"] = draw(_listing([1, 3, 16, 65536], 3, allow_empty=False))
    if draw(st.booleans()):
        doc["search"]["max_gpus"] = draw(st.sampled_from([1, 2, 16, 10**7]))
    if draw(st.booleans()):
        doc["search"]["max_nodes"] = draw(st.sampled_from([1, 3, 10**6]))
    slo = {}
    for key, low in (("tpot_ms", 1e-3), ("ttft_ms", 1e-3), ("e2e_latency_ms", 1e-3)):
        if draw(st.integers(0, 2)) == 0:
            slo[key] = draw(_extreme(low, 1e7))
    if slo:
        doc["slo"] = slo
    demand = draw(st.sampled_from([None, None, "tokens", "requests"]))
    if demand == "tokens":
        doc["workload"]["demand"] = {"output_tokens_per_s": draw(_extreme(1e-6, 1e9))}
    elif demand == "requests":
        doc["workload"]["demand"] = {"requests_per_s": draw(_extreme(1e-6, 1e4))}
    limits: dict = {}
    if draw(st.booleans()):
        limits["budget_usd_per_hour"] = draw(_extreme(1e-3, 1e9, zero=True))
    if draw(st.booleans()) and gpus:
        limits["inventory"] = {draw(st.sampled_from(gpus)): draw(st.sampled_from([0, 1, 3, 10**7]))}
    if draw(st.booleans()):
        limits["power_cap_w"] = draw(_extreme(1.0, 1e10))
    if limits:
        doc["limits"] = limits
    if draw(st.booleans()) and gpus:
        doc["prices"] = {"usd_per_gpu_hour": {draw(st.sampled_from(gpus)): draw(_extreme(1e-6, 1e4, zero=True))}}
    if draw(st.integers(0, 9)) == 0:          # one list names an entry twice: a located refusal
        key = draw(st.sampled_from(["gpus", "quantizations", "kv_dtypes", "tp", "pp"]))
        if doc["search"][key]:
            doc["search"][key] = doc["search"][key] + doc["search"][key][:1]
    return doc


def _known_other_class(spec: PlanSpec) -> str | None:
    """Classes once filtered here (2: an empty search space, 7: a GPU without power_w under a
    power cap) are fixed: nothing is filtered any more; kept so the counts stay comparable."""
    return None


def _raised_in_formulation(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}constraints{os.sep}" in tb.tb_frame.f_code.co_filename:
            return isinstance(exc, IndexError | ValueError)
        tb = tb.tb_next
    return False


def _class2_after_screening(spec: PlanSpec, backend: str) -> bool:
    try:
        plan(spec, backend=backend, time_limit=30)
    except Exception as exc:
        return _raised_in_formulation(exc) and plan(spec, backend="exhaustive", time_limit=30).status == "infeasible"
    return False


def _validate(data: dict):
    doc = Document(data=data, file="<fuzz>")
    try:
        spec = doc.validate(PlanSpec)
    except InputError:
        COUNTS["schema: refused with a located error"] += 1
        return None, doc
    COUNTS["schema: accepted"] += 1
    return spec, doc


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(documents())
def test_every_backend_handles_every_accepted_instance(data):
    spec, doc = _validate(data)
    if spec is None:
        return
    known = _known_other_class(spec)
    if known:
        COUNTS[f"filtered: {known} (fixed elsewhere)"] += 1
        return
    results, refused = {}, {}
    try:       # one resolution and candidate table (with its load model) for the four backends
        problem = resolve(spec, doc)
        cands = build_candidates(problem, cache=CACHE)
    except InputError as exc:
        refused = {b: str(exc) for b in BACKENDS}
        problem = cands = None
    for backend in BACKENDS if problem is not None else ():
        try:
            results[backend] = solve(problem, cands, backend=backend, top_k=spec.ranks(), time_limit=30)
        except InputError as exc:
            refused[backend] = str(exc)
        except Exception as exc:
            oracle = results.get("exhaustive")
            if oracle is not None and oracle.status == "infeasible" and _raised_in_formulation(exc):
                # class 2: every candidate screened out, and building the formulation fails on
                # the empty set; the oracle proves infeasibility. Fixed in constraints/ elsewhere.
                COUNTS["filtered: class 2 after screening (fixed elsewhere)"] += 1
                return
            raise
        COUNTS["backends: solves"] += 1
    if refused:
        COUNTS["backends: refused with a located error"] += 1
        for b, msg in refused.items():
            COUNTS[f"backends: refused by {b}: {msg.split(': ', 1)[-1][:60]}"] += 1
        # the same input must be refused the same way by all (resolution), or only by cpsat (int64)
        assert set(refused) == set(BACKENDS) or set(refused) == {"cpsat"}, refused
    if not results:
        return
    statuses = {b: r.status for b, r in results.items()}
    assert len(set(statuses.values())) == 1, (statuses, data)
    assert next(iter(statuses.values())) in ("optimal", "infeasible"), (statuses, data)
    with_plan = {b: r.plans[0].objective_value for b, r in results.items() if r.plans}
    if with_plan:
        COUNTS["backends: instances with a plan, all agreeing"] += 1
        ref = with_plan.get("exhaustive", next(iter(with_plan.values())))
        for b, v in with_plan.items():
            assert v == pytest.approx(ref, rel=1e-6, abs=1e-12), (b, with_plan, data)
    else:
        COUNTS["backends: instances proven infeasible by all"] += 1


RUNNER = CliRunner()
CAT = Catalog.default()


@settings(max_examples=CLI_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(documents(), st.sampled_from(BACKENDS))
def test_cli_ends_every_run_with_a_documented_exit_code(tmp_path, data, backend):
    spec, _ = _validate(data)
    if spec is not None and _known_other_class(spec):
        return
    f = tmp_path / "instance.yaml"
    f.write_text(yaml.safe_dump(data))
    r = RUNNER.invoke(app, ["plan", str(f), "--backend", backend, "--json", "--time-limit", "30"])
    COUNTS["cli: runs"] += 1
    if r.exit_code == 3 and spec is not None and _class2_after_screening(spec, backend):
        COUNTS["cli: filtered: class 2 after screening (fixed elsewhere)"] += 1
        return
    assert r.exit_code in (0, 1, 2), (r.exit_code, r.output, data)
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output


def test_enough_cases_ran():
    """Run after the two fuzz tests (file order): the promised number of cases happened."""
    if COUNTS["backends: solves"] == 0:
        pytest.skip("the fuzz tests did not run in this session")
    assert COUNTS["backends: solves"] >= MIN_BACKEND_CASES, dict(COUNTS)


# --- the classes fixed elsewhere: re-enable (drop the xfail and the filter above) after the merge ---

def _tiny(**search) -> PlanSpec:
    base = {"model": "llama-3.1-8b", "workload": {"input_tokens": 128, "output_tokens": 64},
            "search": {"gpus": ["l4"], "quantizations": ["w16a16"], "kv_dtypes": ["bf16"], "tp": [1], "pp": [1],
                       "max_batch": 8} | search}
    return PlanSpec.model_validate(base)


@pytest.mark.parametrize("backend", BACKENDS)
def test_class2_empty_search_list_is_an_answer_or_a_located_error(backend):
    r = plan(_tiny(tp=[]), backend=backend, time_limit=10)
    assert r.status == "infeasible" and not r.plans
    assert [d.fact.constraint for d in r.diagnosis] == ["search"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_class7_gpu_without_power_under_a_power_cap(backend):
    """A GPU with FLOP/s but no power_w cannot be checked against a power cap: it is not
    searched, and says so (it was: two backends crashed, HiGHS said time_limit, the oracle
    ignored a 1 W cap)."""
    h100 = {k: v for k, v in CAT.gpus["h100-sxm"].model_dump().items() if k not in ("id", "power_w")}
    base = _tiny(gpus=["nopower", "l4"]).model_dump()
    spec = PlanSpec.model_validate(base | {"limits": {"power_cap_w": 1.0},
                                           "extra_catalog": {"gpus": {"nopower": h100}}})
    r = plan(spec, backend=backend, time_limit=10)
    assert r.status == "infeasible" and "nopower" in r.excluded_gpus
    assert "power_w" in r.excluded_gpus["nopower"]
