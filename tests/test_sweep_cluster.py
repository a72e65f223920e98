"""Sweeps on a multi-node Ray cluster (issue 26 item 5): a head and a worker node started on
this machine (``ray.cluster_utils.Cluster``: a raylet each, as ``ray start`` gives), the sweep
sent to the cluster's address, its JSON and CSV byte-identical to a serial run. The cluster
lives in a child process that shuts it down in a ``finally``; the child has a deadline and
its whole process group is killed past it, so the test cannot hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 150

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
import ray
from ray.cluster_utils import Cluster
from planner.schemas.sweep import load_sweep_spec
from planner.whatif.executors import RayExecutor, SerialExecutor
from planner.whatif.sweep import sweep
from planner.yamlio import load_yaml

spec, doc = load_sweep_spec({sweep!r})
base = load_yaml({base!r})
serial = sweep(spec, doc, base, SerialExecutor())
cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
try:
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    nodes = sum(1 for n in ray.nodes() if n["Alive"])
    r = sweep(spec, doc, base, RayExecutor(3, address=cluster.address))
    print(json.dumps(dict(nodes=nodes, json=r.to_json() == serial.to_json(), csv=r.to_csv() == serial.to_csv(),
                          rows=len(r.rows))))
finally:
    ray.shutdown()
    cluster.shutdown()
"""


def test_a_sweep_on_a_two_node_local_cluster_is_byte_identical_to_serial(tmp_path):
    pytest.importorskip("ray", reason="Ray is in the dev extra (pip install -c constraints.txt -e '.[dev]')")
    base = ROOT / "instances" / "sweeps" / "llama8b_base.yaml"
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"schema_version: 1\nbase: {base}\ngrid:\n  demand_multiplier: [1, 4]\n"
                     "  prices: {h100-sxm: [1.5, 3.5], l40s: [0.6, 1.4]}\nbatch_size: 1\ntime_limit_s: 10\n")
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), sweep=str(sweep), base=str(base))],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True,
                             env={**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(ROOT)})
    try:
        out, err = child.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        pytest.fail(f"the Ray cluster run passed {DEADLINE_S} s and was killed")
    assert child.returncode == 0, err[-3000:]
    got = json.loads(out.strip().splitlines()[-1])
    assert got == dict(nodes=2, json=True, csv=True, rows=8)
