"""How many CPU threads scitune uses and how its idle threads wait; decided once at start-up.

torch's CPU kernels run on OpenMP threads (libgomp in the pip wheels). By default libgomp lets an
idle thread spin for a while before it sleeps, and torch takes one thread per core of the
machine. Alone on the machine that is fast. Beside other busy programs it is not: a thread spins
on a core while the thread it waits for has no core, and a tiny model, which starts thousands of
short parallel regions a second, ran 10-50x slower on a 2-core machine with two other busy
processes (README, "Threads"). So `configure`, which `scitune`'s entry point calls before any
module imports torch, sets:

- `OMP_WAIT_POLICY=PASSIVE` (idle threads sleep at once) unless the variable is already set;
- the thread count from the CPUs this process may use: the physical cores among
  `os.sched_getaffinity(0)`, no more than a cgroup CPU quota allows, split between the processes
  of a distributed launch (`LOCAL_WORLD_SIZE`). `--threads N` wins over
  everything; otherwise `OMP_NUM_THREADS` (or `MKL_NUM_THREADS`), when set, wins over our count.
  The count goes to `OMP_NUM_THREADS`, `MKL_NUM_THREADS` and `OPENBLAS_NUM_THREADS` (numpy).

`SCITUNE_THREADS=off` turns the policy off (torch's defaults; `--threads` and your own variables
still apply). The environment variables only take effect before torch is loaded: when scitune is
called from a program that has already imported torch, the program's threads are left as they
are (an explicit `--threads` is still applied with `torch.set_num_threads`).

Processes that scitune starts share the same budget: `share(n)` is the threads each of n
concurrent processes gets, `child_env(threads)` the variables a child process needs, and
`worker_threads(num_workers)` the threads per DataLoader worker (for a DataLoader with workers:
call `torch.set_num_threads(worker_threads(n))` in its `worker_init_fn`).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, MutableMapping

from scitune.errors import ScituneError

SWITCH = "SCITUNE_THREADS"  # "off": torch's own defaults
WAIT_VAR = "OMP_WAIT_POLICY"
# Read by torch at start-up, in torch's order of precedence (ATen's intraop_default_num_threads).
TORCH_COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What we set: torch's variables and numpy's BLAS.
COUNT_VARS = TORCH_COUNT_VARS + ("OPENBLAS_NUM_THREADS",)
MAX_THREADS = 1024
CPU_SYSFS = Path("/sys/devices/system/cpu")
CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_DIR = Path("/sys/fs/cgroup/cpu")


@dataclass(frozen=True)
class ThreadPlan:
    """What `decide` chose: the thread count (None: left to torch), the OpenMP wait policy
    (None: left to the OpenMP runtime), where each came from, and the variables to set."""

    threads: int | None
    threads_from: str
    wait_policy: str | None
    wait_policy_from: str
    cpus: int
    env: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def describe(self) -> str:
        count = f"{self.threads}" if self.threads is not None else "torch's default"
        line = (f"threads: {count} ({self.threads_from}); OpenMP wait policy: "
                f"{self.wait_policy or 'the runtime default (idle threads spin)'} ({self.wait_policy_from})")
        return line + f"; {self.cpus} usable CPU core(s)" + (f"; {self.note}" if self.note else "")


# ------------------------------------------------------------------------------- the CPUs we may use


def _read_small(path: Path) -> str | None:
    try:
        with path.open("r", encoding="ascii", errors="replace") as handle:
            return handle.read(256)
    except OSError:
        return None


def allowed_cpus() -> set[int]:
    """The logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int], root: Path | None = None) -> int:
    """Distinct physical cores among `cpus` (hyper-threads of one core count once); the number of
    CPUs when the topology cannot be read."""
    root = CPU_SYSFS if root is None else root
    cores = set()
    for cpu in cpus:
        package = _read_small(root / f"cpu{cpu}" / "topology" / "physical_package_id")
        core = _read_small(root / f"cpu{cpu}" / "topology" / "core_id")
        if package is None or core is None:
            return len(cpus)
        cores.add((package.strip(), core.strip()))
    return len(cores) or len(cpus)


def cgroup_cpu_limit(v2: Path = CGROUP_V2_MAX, v1: Path = CGROUP_V1_DIR) -> int | None:
    """CPUs a cgroup quota allows (a container's --cpus), rounded up; None without a quota."""
    text = _read_small(v2)
    if text is not None:
        parts = text.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
        return None
    quota_text, period_text = _read_small(v1 / "cpu.cfs_quota_us"), _read_small(v1 / "cpu.cfs_period_us")
    try:
        quota, period = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def cpu_budget() -> int:
    """Threads worth running: physical cores among the CPUs this process may use, within a
    cgroup CPU quota."""
    cores = physical_cores(allowed_cpus())
    limit = cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit else cores)


# ------------------------------------------------------------------------------- the decision


def _parse_count(value: str, what: str) -> int:
    # OpenMP allows a nested list ("4,2"): the first entry is the outer level, the one torch uses.
    first = str(value).split(",")[0].strip()
    try:
        count = int(first)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_THREADS:
        raise ScituneError(f"{what}={value!r}: expected a whole number of threads, 1 to {MAX_THREADS}")
    return count


def decide(threads: int | None = None, environ: Mapping[str, str] | None = None,
           cpus: int | None = None) -> ThreadPlan:
    """The thread plan for a process about to import torch (pure: reads only its arguments,
    and the machine when `cpus` is None)."""
    environ = os.environ if environ is None else environ
    switch = environ.get(SWITCH, "").strip().lower()
    if switch not in ("", "on", "off"):
        raise ScituneError(f"{SWITCH}={environ[SWITCH]!r}: expected off (torch's defaults) or on")
    off = switch == "off"
    cpus = cpu_budget() if cpus is None else cpus
    env: dict[str, str] = {}

    user_var = next((var for var in TORCH_COUNT_VARS if environ.get(var, "").strip()), None)
    if threads is not None:
        count = _parse_count(str(threads), "--threads")
        source = "--threads"
        env.update({var: str(count) for var in COUNT_VARS})  # --threads wins over the environment
    elif user_var:
        count = _parse_count(environ[user_var], user_var)
        source = f"{user_var} (yours)"
        env.update({var: str(count) for var in COUNT_VARS if not environ.get(var, "").strip()})
    elif off:
        count, source = None, f"{SWITCH}=off"
    else:
        count, source = cpus, "the CPU cores this process may use"
        local = environ.get("LOCAL_WORLD_SIZE", "").strip()  # torchrun / accelerate: processes on this machine
        if local.isdigit() and int(local) > 1:
            count, source = max(1, cpus // int(local)), f"the CPU cores this process may use, shared by {local} processes"
        env.update({var: str(count) for var in COUNT_VARS if not environ.get(var, "").strip()})

    if environ.get(WAIT_VAR, "").strip():
        policy, policy_from = environ[WAIT_VAR].strip(), f"{WAIT_VAR} (yours)"
    elif off:
        policy, policy_from = None, f"{SWITCH}=off"
    else:
        policy, policy_from = "PASSIVE", f"scitune's default; set {WAIT_VAR} or {SWITCH}=off to change it"
        env[WAIT_VAR] = policy
    return ThreadPlan(threads=count, threads_from=source, wait_policy=policy, wait_policy_from=policy_from,
                      cpus=cpus, env=env)


# ------------------------------------------------------------------------------- applying it

_plan: ThreadPlan | None = None
_written: dict[str, str] = {}  # what configure() wrote, so a second call does not take it for the user's


def configure(threads: int | None = None, environ: MutableMapping[str, str] | None = None) -> ThreadPlan:
    """Decides the plan and applies it to this process: call before torch is imported. Returns
    the plan (also `current_plan()`)."""
    global _plan
    environ = os.environ if environ is None else environ
    # a value this function wrote earlier in this process is ours, not the user's
    view = {k: v for k, v in environ.items() if not (k in _written and _written[k] == v)}
    plan = decide(threads, view)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        # torch is already loaded (scitune called from a program): the variables are read too late
        if threads is not None:
            torch.set_num_threads(plan.threads)
            note = "torch was already loaded: thread count set with torch.set_num_threads, wait policy unchanged"
        else:
            note = f"torch was already loaded by the calling program: its {torch.get_num_threads()} threads left as they are"
        plan = ThreadPlan(plan.threads if threads is not None else torch.get_num_threads(),
                          plan.threads_from if threads is not None else "the calling program",
                          environ.get(WAIT_VAR, "").strip() or None, "as the calling program started",
                          plan.cpus, {}, note)
    for var, value in plan.env.items():
        environ[var] = value
        _written[var] = value
    _plan = plan
    return plan


def current_plan() -> ThreadPlan | None:
    """The plan `configure` applied in this process, if any."""
    return _plan


def budget() -> int:
    """The threads this process may keep busy: the configured count, else what `decide` would
    choose from the environment and the machine."""
    if _plan is not None and _plan.threads is not None:
        return _plan.threads
    try:
        plan = decide()
    except ScituneError:
        return cpu_budget()
    return plan.threads or cpu_budget()


def share(processes: int, total: int | None = None) -> int:
    """Threads for each of `processes` processes that run at the same time within `total`
    threads (default: `budget()`); at least one."""
    total = budget() if total is None else total
    return max(1, total // max(1, processes))


def worker_threads(num_workers: int, total: int | None = None) -> int:
    """Threads for each of `num_workers` DataLoader workers (`torch.set_num_threads` in the
    loader's `worker_init_fn`): an equal share of the budget, at least one, instead of torch's
    default of every core in every worker. The workers mostly prefetch while the training process
    computes; with passive waits a short overlap costs little."""
    return share(num_workers, total)


def child_env(threads: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables for a child process that should use `threads` threads: the thread counts, and
    the passive wait policy unless the user set one or turned the policy off."""
    environ = os.environ if environ is None else environ
    env = {var: str(threads) for var in COUNT_VARS}
    if not environ.get(WAIT_VAR, "").strip() and environ.get(SWITCH, "").strip().lower() != "off":
        env[WAIT_VAR] = "PASSIVE"
    return env
