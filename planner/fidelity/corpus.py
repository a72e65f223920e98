"""The corpus as `planner validate` maps it: one home for the context its rows are read in.

A row's case depends on the rest of the file: a measurement listed more than once is
predicted at its stand-in (``repeats.measurement_of``), a disaggregated row without worker
counts takes its pools from a recipe (``rows.pool_recipes``, or a variant rule), and a
speculative twin (``repeats.speculative_twins``) is predicted as its MTP run where its checkpoint
ships a drafter. ``Corpus.mapped`` yields each row read that way; validate.py and the
benchmarks that break its errors down (benchmarks/disagg_tpot.py, tpot_groups.py,
disagg_recipes.py) all read the rows through it, so they see the cases validate predicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from planner.catalog.store import Catalog
from planner.fidelity.repeats import measurement_of, speculative_twins, with_speculation
from planner.fidelity.rows import Case, load_measurements, map_row, pool_recipes, recipe_family


@dataclass(frozen=True)
class Mapped:
    """One row as validate reads it."""
    i: int                      # the row's index in the corpus (CSV line i + 2)
    row: dict
    stand_in: int               # the row standing for the same measurement (i where this is it)
    case: Case | str | None     # its case; the reason it is not expressed; None for a repeat
    pools: str | None = None    # disaggregated pools read "stated", from a "recipe", or "1+1" assumed
    twin: bool = False          # a speculative twin whose checkpoint ships its drafter

    @property
    def expressed(self) -> Case | None:
        """Its case; None for a repeat or a row the model cannot express."""
        return self.case if isinstance(self.case, Case) else None

    @property
    def repeat(self) -> bool:
        """Another row stands for this measurement (it is predicted and counted there)."""
        return self.stand_in != self.i


def pools_read(case: Case) -> str | None:
    """How a case's disaggregated pools were read: "stated" (the row's columns), "recipe" (a
    recipe row's), "1+1" (one worker a pool assumed); None for an aggregated case."""
    if case.pools is None:
        return None
    return "stated" if case.pools.stated else "recipe" if case.pools.recipe is not None else "1+1"


@dataclass
class Corpus:
    """A measurements file with the context its rows are mapped in."""
    rows: list[dict]
    catalog: Catalog
    names: dict                 # the catalog's names memo (rows.names_of), shared by every mapping
    stand_in: list[int]         # repeats.measurement_of
    recipes: dict[int, int]     # row -> its recipe's row (the recipe rule)
    twins: set[int]             # repeats.speculative_twins, whatever the checkpoint

    def mapped(self, keep: Callable[[int, dict], bool] | None = None, *,
               speculate: bool = True) -> Iterator[Mapped]:
        """Each row (those ``keep(i, row)`` accepts) as validate maps it: a repeat is not
        mapped (case None); a speculative twin whose checkpoint ships a drafter has ``twin``
        set and, with ``speculate``, its case is its MTP run (``repeats.with_speculation``;
        ``speculate`` False: predicted as a plain run, still marked)."""
        for i, r in enumerate(self.rows):
            if keep is not None and not keep(i, r):
                continue
            if self.stand_in[i] != i:
                yield Mapped(i, r, self.stand_in[i], None)
                continue
            j = self.recipes.get(i)
            case = map_row(i, r, self.catalog, self.names, None if j is None else (j, self.rows[j]))
            if isinstance(case, str):
                yield Mapped(i, r, i, case)
                continue
            twin = i in self.twins and self.catalog.model(case.model).mtp_layers > 0
            yield Mapped(i, r, i, with_speculation(case) if twin and speculate else case, pools_read(case), twin)


def load_corpus(path: str, catalog: Catalog | None = None, rule=pool_recipes) -> Corpus:
    """The measurements at ``path`` and their context: stand-ins, the recipes ``rule`` picks
    (``rows.pool_recipes`` or a variant with its signature) and the speculative twins."""
    catalog = catalog or Catalog.default()
    rows = load_measurements(path)
    stand_in = measurement_of(rows)
    names: dict = {}
    family = recipe_family(catalog, names)
    return Corpus(rows, catalog, names, stand_in, rule(rows, family), speculative_twins(rows, family, stand_in))
