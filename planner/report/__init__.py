"""One self-contained HTML report of a plan result (html.py); the sentences of facts (wording.py)."""
