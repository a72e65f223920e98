"""Catalogs shipped with the package (GPUs, models), user overrides, and HF config import.

store.py: the catalog and its readers; aliases.py: names; hf.py: config.json; schema.py; support.py."""
