"""Request traces as workloads: reading (read.py) and what they say about a workload
(figures.py). Shared infrastructure: the resolver turns a trace into a workload, the CLI
summarises one, the simulator may replay one (docs/workloads.md)."""
