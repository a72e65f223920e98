"""Resolution: from a validated schema to catalog objects (problem.py), workloads (workload.py),
calibration (calibration.py) and tie bands (uncertainty.py)."""
