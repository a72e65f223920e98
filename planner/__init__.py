"""LLM inference deployment planner: analytic physics, catalogs, solvers and explanations."""

__version__ = "0.1.0"
