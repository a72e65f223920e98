"""Command-line interface: parses, calls the library, renders. Nothing else.

root.py: the typer app and main(); one *_cmd.py module per command; render.py: tables."""
