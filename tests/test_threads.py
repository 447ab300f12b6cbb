"""The threading decision (scitune.threads) and the CLI applying it before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scitune import threads
from scitune.errors import ScituneError

ROOT = Path(__file__).resolve().parents[1]


def test_default_is_passive_and_the_usable_cores():
    plan = threads.decide(environ={}, cpus=3)
    assert plan.threads == 3
    assert plan.wait_policy == "PASSIVE"
    assert plan.env == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3",
                        "OMP_WAIT_POLICY": "PASSIVE"}
    assert "3" in plan.describe() and "PASSIVE" in plan.describe()


def test_user_environment_wins_over_our_defaults():
    plan = threads.decide(environ={"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "active"}, cpus=4)
    assert plan.threads == 1 and plan.threads_from.startswith("OMP_NUM_THREADS")
    assert plan.wait_policy == "active"
    # the user's variables are never rewritten; the unset ones follow the user's count
    assert plan.env == {"MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    # MKL_NUM_THREADS alone counts too (torch reads it after OMP_NUM_THREADS)
    assert threads.decide(environ={"MKL_NUM_THREADS": "2"}, cpus=4).threads == 2
    # an OpenMP nested list: the outer level
    assert threads.decide(environ={"OMP_NUM_THREADS": "3,1"}, cpus=8).threads == 3


def test_threads_option_wins_over_everything():
    plan = threads.decide(threads=2, environ={"OMP_NUM_THREADS": "6", "SCITUNE_THREADS": "off"}, cpus=8)
    assert plan.threads == 2 and plan.threads_from == "--threads"
    assert plan.env["OMP_NUM_THREADS"] == "2" and plan.env["MKL_NUM_THREADS"] == "2"


def test_a_distributed_launch_splits_the_cores():
    assert threads.decide(environ={"LOCAL_WORLD_SIZE": "4"}, cpus=8).threads == 2
    assert threads.decide(environ={"LOCAL_WORLD_SIZE": "4"}, cpus=2).threads == 1


def test_off_leaves_torch_defaults():
    plan = threads.decide(environ={"SCITUNE_THREADS": "off"}, cpus=8)
    assert plan.threads is None and plan.wait_policy is None and plan.env == {}


@pytest.mark.parametrize("environ, option", [
    ({"OMP_NUM_THREADS": "many"}, None), ({"OMP_NUM_THREADS": "0"}, None), ({}, 0), ({}, 5000),
    ({"SCITUNE_THREADS": "sometimes"}, None),
])
def test_bad_values_are_one_line_errors(environ, option):
    with pytest.raises(ScituneError):
        threads.decide(threads=option, environ=environ, cpus=2)


def test_affinity_and_topology_decide_the_count(monkeypatch, tmp_path):
    # CPUs 0-3 are two cores with two hyper-threads each; this process may use CPUs 1, 2, 3
    for cpu, core in enumerate((0, 1, 0, 1)):
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    assert threads.physical_cores({1, 2, 3}, root=tmp_path) == 2
    assert threads.physical_cores({0, 2}, root=tmp_path) == 1
    assert threads.physical_cores({0, 7}, root=tmp_path) == 2  # no topology for cpu7: count CPUs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "CPU_SYSFS", tmp_path)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.decide(environ={}).threads == 2  # CPUs 1 and 3 are one core
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 1)
    assert threads.decide(environ={}).threads == 1  # the quota allows one CPU


def test_cgroup_quota(tmp_path):
    v2 = tmp_path / "cpu.max"
    v2.write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(v2=v2, v1=tmp_path / "none") == 2
    v2.write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(v2=v2, v1=tmp_path / "none") is None
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v2=tmp_path / "absent", v1=v1) == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpu_limit(v2=tmp_path / "absent", v1=v1) is None


def test_processes_share_the_budget():
    assert threads.share(2, total=4) == 2
    assert threads.share(3, total=2) == 1
    assert threads.worker_threads(4, total=8) == 2
    assert threads.child_env(1, environ={}) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                                                "OPENBLAS_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    assert "OMP_WAIT_POLICY" not in threads.child_env(1, environ={"OMP_WAIT_POLICY": "ACTIVE"})
    assert "OMP_WAIT_POLICY" not in threads.child_env(1, environ={"SCITUNE_THREADS": "off"})


def test_configure_writes_the_environment_once(monkeypatch):
    monkeypatch.setattr(threads, "_written", {})
    monkeypatch.setattr(threads, "_plan", None)
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as at start-up
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    plan = threads.configure(threads=1, environ=environ)
    assert environ["OMP_NUM_THREADS"] == "1" and environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert threads.current_plan() is plan and threads.budget() == 1
    # a second call (main() run twice in one process) does not take our own values for the user's
    again = threads.configure(environ=environ)
    assert again.threads_from != "OMP_NUM_THREADS (yours)"


def test_a_program_that_loaded_torch_keeps_its_threads(monkeypatch):
    import torch

    monkeypatch.setattr(threads, "_written", {})
    monkeypatch.setattr(threads, "_plan", None)
    before = torch.get_num_threads()
    environ: dict[str, str] = {}
    try:
        plan = threads.configure(environ=environ)
        assert environ == {} and plan.threads == before and torch.get_num_threads() == before
        assert plan.wait_policy is None and "already loaded" in plan.describe()
        plan = threads.configure(threads=1, environ=environ)  # an explicit --threads still applies
        assert plan.threads == 1 and torch.get_num_threads() == 1 and environ == {}
    finally:
        torch.set_num_threads(before)


def test_the_cli_loads_no_torch_before_deciding():
    code = ("import sys\nfrom scitune.cli import build_parser\n"
            "build_parser().parse_args(['--threads', '1', 'demo', '--quick'])\n"
            "assert 'torch' not in sys.modules, 'a command module imports torch at import time'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_python_m_scitune_reports_and_applies_the_choice(tmp_path):
    # `python -m scitune` exactly as a user runs it, then torch imported in that same process
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['scitune', '--threads', '1', '--verbose', 'corpus', 'build', '--figures', '7', '--out', {str(tmp_path / 'c')!r}]\n"
        "try:\n    runpy.run_module('scitune', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "import torch\nprint('torch threads', torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in threads.COUNT_VARS + (threads.WAIT_VAR, threads.SWITCH)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "threads: 1 (--threads)" in done.stderr and "PASSIVE" in done.stderr
    assert "torch threads 1" in done.stdout
