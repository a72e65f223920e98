"""`planner estimate`: evaluate one fixed configuration and explain where time and memory go (run.py)."""
