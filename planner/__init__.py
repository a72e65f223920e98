"""LLM inference deployment planner: analytic physics, catalogs, solvers and explanations.

From a program: ``from planner import api`` (planner/api.py, docs/api.md)."""

__version__ = "0.1.0"
