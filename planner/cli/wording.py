"""The sentences live in planner/report/wording.py so the CLI and the HTML report share them."""

from planner.report.wording import (  # noqa: F401
                                    STAT,
                                    batch_limit,
                                    capacity,
                                    count_limit,
                                    diagnosis,
                                    headroom,
                                    plan_lines,
                                    regime,
                                    relaxation,
                                    simulation,
                                    target_headroom,
                                    versus,
)
