"""Launch commands from a plan (scripts.py), from the engines' flag tables as data (flags.py)."""
