"""The solver-neutral model held compactly (issue 26 item 2: 1,000 workloads within 2 GiB):
variables column by column with their names made when read, each row's coefficients as two
arrays read like a dict, and pruning a chunk of whole groups at a time; each the same model
and the same answers as before, in the same order."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_fleet_scale import _problem

import constraints
from constraints import choice, prune
from constraints.model import Coeffs, LinearModel
from planner.backends.base import get_backend
from planner.plan.solve import first_phase_view


def test_coefficients_read_like_the_dict_they_were_given_in_its_order():
    given = {7: 2.5, 3: -1.0, 11: 0.0, 5: 4.0}
    m = LinearModel()
    for i in range(12):
        m.var(f"v{i}", 0, 10, integer=i % 2 == 1, dimension="seconds" if i < 6 else "count")
    m.row("r", "test", given, "<=", 3.0, "seconds")
    c = m.rows[0].coeffs
    assert isinstance(c, Coeffs)
    assert list(c.items()) == [(7, 2.5), (3, -1.0), (5, 4.0)]      # the zero dropped, the order kept
    assert list(c) == [7, 3, 5] and list(c.values()) == [2.5, -1.0, 4.0] and len(c) == 3
    assert c[5] == 4.0 and c.get(11) is None and c.get(4, 9.0) == 9.0 and 3 in c and 2 not in c
    with pytest.raises(KeyError):
        c[11]
    assert c == {7: 2.5, 3: -1.0, 5: 4.0}
    # a continuous variable of the row's dimension counts in the units already, every other term
    # (an integer variable, another dimension) is divided by the unit: v3 integer, v7 of "count"
    units = {"seconds": 1e-3, "count": 1.0}
    assert m.in_units(c, "seconds", units) == {7: 2.5 / 1e-3, 3: -1.0 / 1e-3, 5: 4.0 / 1e-3}
    m.row("s", "test", {4: 2.0, 6: 1.0}, "<=", 1.0, "seconds")
    assert m.in_units(m.rows[1].coeffs, "seconds", units) == {4: 2.0, 6: 1.0 / 1e-3}


def _left_to_right(terms):
    """The products added one by one from 0.0 (not ``sum``: Python 3.12's compensates)."""
    total = 0.0
    for t in terms:
        total = total + t
    return total


def test_a_dot_product_adds_its_terms_left_to_right_bit_for_bit():
    """Coeffs.dot: the phases' keep rows and the start's comparison read an objective's value,
    so a vectorised sum must be the sequential one, left to right: magnitudes 1e-8 to 1e8
    (where any other order rounds differently), -0.0 terms (0.0 + -0.0 is 0.0), repeats."""
    rng = np.random.default_rng(26)
    for case in range(500):
        n = int(rng.integers(0, 40))
        index = rng.integers(0, 30, n)
        value = rng.normal(size=n) * 10.0 ** rng.integers(-8, 9, n)
        if case % 7 == 0:
            value[:] = -0.0
        at = rng.normal(size=30) * 1e3
        at[rng.integers(0, 30, 4)] = 0.0
        c = Coeffs(index, value)
        expected = _left_to_right(a * float(at[i]) for i, a in c.items())
        assert repr(c.dot(at)) == repr(float(expected))
        assert repr(c.dot(at.tolist())) == repr(float(expected))
    assert Coeffs(np.zeros(0, dtype=np.int64), np.zeros(0)).dot([1.0]) == 0.0


def test_a_dot_product_is_silent_and_ieee_on_infinities_and_overflow(recwarn):
    """inf - inf and 0 x inf are NaN, an overflow inf, as the Python loop gives them, and
    without the warnings numpy would print where the loop prints nothing."""
    for value, at, expected in (([np.inf, -np.inf], [1.0, 1.0], "nan"), ([0.0], [np.inf], "nan"),
                                ([1e308, 1e308, -1e308], [1.0, 1.0, 1.0], "inf")):
        c = Coeffs(np.arange(len(value)), np.array(value))
        assert repr(c.dot(at)) == repr(_left_to_right(a * float(at[i]) for i, a in c.items())) == expected
    assert not [w for w in recwarn.list if issubclass(w.category, RuntimeWarning)]


def test_variables_are_held_as_columns_and_named_when_read():
    m = LinearModel()
    a = m.var("a", 0, 1, integer=True)
    asked = []

    def names(at: np.ndarray) -> list[str]:
        asked.append(len(at))
        return [f"y[{k}]" for k in at.tolist()]

    block = m.var_block(names, 0, np.array([3.0, 4.0, 5.0]), integer=True)
    t = m.var("t", 0.5, 2.0, integer=False, dimension="seconds")
    assert a == 0 and block.tolist() == [1, 2, 3] and t == 4 and len(m.vars) == 5
    assert m.vars.ub.tolist() == [1.0, 3.0, 4.0, 5.0, 2.0] and m.vars.lb.tolist() == [0, 0, 0, 0, 0.5]
    assert m.vars.integer.tolist() == [True] * 4 + [False]
    assert not asked                                 # no name made until one is read
    v = m.vars[2]
    assert (v.name, v.lb, v.ub, v.integer, v.dimension) == ("y[1]", 0.0, 4.0, True, "count")
    assert [x.name for x in m.vars] == ["a", "y[0]", "y[1]", "y[2]", "t"] and asked == [3]   # once per block
    assert m.vars[-1].dimension == "seconds" and [x.name for x in m.vars[1:3]] == ["y[0]", "y[1]"]
    assert m.vars.units({"count": 1.0, "seconds": 1e-3}).tolist() == [1.0, 1.0, 1.0, 1.0, 1e-3]
    with pytest.raises(ValueError, match="y\\[1\\]"):
        m.var_block(names, 0, np.array([1.0, np.inf]), integer=True)
    assert m.holds([1, 3, 4, 5, 2], 1e-9) and not m.holds([1, 3, 4.1, 5, 2], 1e-9)


@pytest.mark.parametrize("backend", ["highs", "milp"])
def test_a_fleet_solved_by_highs_or_cbc_makes_no_variable_name(backend):
    # a fleet's model names its replica variables when a solver reads them; the decomposition,
    # HiGHS and CBC (PuLP names its own) read none (a thousand workloads: 845,718 names, about
    # 100 MiB, never made)
    p, c = _problem()
    f = constraints.build(replace(first_phase_view(p, c), limited=()))
    sol = get_backend(backend).solve(f, 60)
    assert sol.values is not None
    assert not any(isinstance(names, list) for size, names in f.model.vars._names if size > 1)
    assert [v.name for v in f.model.vars][0].startswith("replicas[")


def test_pruning_a_chunk_of_whole_groups_at_a_time_drops_the_same_rows(monkeypatch):
    p, c = _problem()
    base = replace(first_phase_view(p, c), limited=())
    for bounds in ((), (("cost_per_hour", 1e9),)):
        f = constraints.Formulation(cands=replace(base, bounds=bounds), covering=True)
        f.replicas = choice.needs_replicas(f.cands)
        constraints.screen(f)
        whole = {ranks: prune.pruned(f, ranks) for ranks in (1, 2)}
        monkeypatch.setattr(prune, "CHUNK_ROWS", 7)     # many chunks, each of whole groups
        for ranks in (1, 2):
            assert np.array_equal(prune.pruned(f, ranks), whole[ranks]) and whole[ranks].any()
        monkeypatch.undo()
