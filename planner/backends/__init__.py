"""Solver backends with one status vocabulary and capabilities declared as data.

base.py: statuses, features, the registry (get_backend); one module per backend; exhaustive.py is
the independent oracle."""
