"""The formulation: one module per constraint family, each adding named linear rows to a
solver-neutral model (docs/formulation.md). Families read the candidate table
(planner/candidates) and nothing else: no spec, no CLI, no solver.

The slot axis: every family works per slot (one deployment to choose per workload, later
per role) where its quantity is per slot (choice, latency, demand), and across all slots
where the limit is shared (inventory, budget, power). A single-model instance is one slot."""

from constraints.formulation import FAMILIES as FAMILIES
from constraints.formulation import PER_DEPLOYMENT as PER_DEPLOYMENT
from constraints.formulation import SCREENING as SCREENING
from constraints.formulation import Formulation as Formulation
from constraints.formulation import build as build
from constraints.formulation import screen as screen
from constraints.incumbent import Incumbent as Incumbent
from constraints.incumbent import assignment as assignment
from constraints.incumbent import incumbent as incumbent
