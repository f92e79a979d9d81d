"""World discovery from fake environments, the Slurm list parsers, and real mpiexec / srun."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from dist_train.runtime.env import MPILayout, World, discover_world
from dist_train.runtime.hostlist import expand_hostlist, expand_tasks_per_node
from partition.errors import InputError

TORCHRUN = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "head", "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "x"}
# What srun gives task 1 of 4 on the second node (values measured on Slurm 22.05).
SRUN = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_NPROCS": "4", "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1", "SLURM_STEP_ID": "0", "SLURM_STEPID": "0", "SLURM_JOB_ID": "123456",
        "SLURM_TASKS_PER_NODE": "2(x2)", "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
        "SLURM_JOB_NODELIST": "node[007-008]", "SLURM_STEP_NODELIST": "node[007-008]"}
# The batch script itself: PROCID and NTASKS but no step id.
BATCH = {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
         "SLURM_JOB_ID": "9", "SLURM_TASKS_PER_NODE": "2", "SLURM_JOB_NODELIST": "vm"}


class FakeMPI:
    """An MPIProbe for one rank; ``rank0_choice`` is what rank 0 would broadcast."""

    def __init__(self, layout: MPILayout, rank0_choice=("mpihead", 31000)):
        self._layout, self._choice, self.calls = layout, rank0_choice, 0

    def layout(self) -> MPILayout:
        return self._layout

    def broadcast(self, obj):
        self.calls += 1
        return obj if self._layout.rank == 0 else self._choice


def test_torchrun():
    assert discover_world(TORCHRUN) == World(3, 4, 1, 2, "head", 29500, "torchrun", job_id="x")


def test_torchrun_inside_srun_wins_over_slurm():
    env = {**SRUN, **TORCHRUN}
    assert discover_world(env).launcher == "torchrun"
    assert discover_world(env).rank == 3 and discover_world(env).master_addr == "head"


def test_plain_env_launch_defaults_local_fields():
    env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "1234"}
    w = discover_world(env)
    assert (w.local_rank, w.local_world_size) == (0, 1)


def test_srun_without_torchrun():
    w = discover_world(SRUN)
    assert w == World(3, 4, 1, 2, "node007", 20000 + 123456 % 20000, "slurm", job_id="123456")


def test_srun_port_and_addr_overrides():
    w = discover_world({**SRUN, "MASTER_PORT": "4444", "MASTER_ADDR": "10.1.1.1"})
    assert (w.master_addr, w.master_port) == ("10.1.1.1", 4444)


def test_srun_ntasks_per_node_wins():
    assert discover_world({**SRUN, "SLURM_NTASKS_PER_NODE": "3"}).local_world_size == 3


def test_srun_same_job_same_port_other_job_other_port():
    ranks = [discover_world({**SRUN, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r % 2)}) for r in range(4)]
    assert len({(w.master_addr, w.master_port) for w in ranks}) == 1
    assert discover_world({**SRUN, "SLURM_JOB_ID": "123457"}).master_port != ranks[0].master_port


@pytest.mark.parametrize("env", [BATCH, {**BATCH, "SLURM_NTASKS": "1"}], ids=["sbatch-n2", "salloc-n1"])
def test_batch_script_or_salloc_is_a_single_process(env):
    # no srun step: python started by hand must not wait for N-1 ranks that never come
    w = discover_world(env)
    assert (w.launcher, w.world_size, w.master_addr) == ("single", 1, "127.0.0.1")


def test_srun_with_one_task_is_a_slurm_world_of_one():
    env = {**SRUN, "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_TASKS_PER_NODE": "1", "SLURM_STEP_TASKS_PER_NODE": "1"}
    w = discover_world(env)
    assert (w.launcher, w.rank, w.world_size) == ("slurm", 0, 1)


@pytest.mark.parametrize("rank", [0, 1])
def test_mpi_with_fake_probe(rank):
    probe = FakeMPI(MPILayout(rank, 2, rank, 2))
    w = discover_world({"PMI_RANK": str(rank), "PMI_SIZE": "2"}, mpi=probe)
    assert (w.rank, w.world_size, w.local_rank, w.local_world_size, w.launcher) == (rank, 2, rank, 2, "mpi")
    assert probe.calls == 1  # every rank joins the broadcast, or rank 0 would hang
    if rank == 1:
        assert (w.master_addr, w.master_port) == ("mpihead", 31000)
    else:
        assert w.master_addr and 0 < w.master_port < 65536


def test_mpirun_inside_a_slurm_step_is_mpi():
    # ranks of an mpirun started inside a job step inherit one SLURM_PROCID: trust MPI
    env = {**SRUN, "SLURM_PROCID": "0", "OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8"}
    w = discover_world(env, mpi=FakeMPI(MPILayout(5, 8, 1, 4)))
    assert (w.launcher, w.rank, w.world_size) == ("mpi", 5, 8)


def test_single_process():
    w = discover_world({"HOME": "/root"})
    assert (w.rank, w.world_size, w.local_rank, w.local_world_size) == (0, 1, 0, 1)
    assert (w.master_addr, w.launcher) == ("127.0.0.1", "single") and 1024 <= w.master_port < 65536


@pytest.mark.parametrize("env, fragment", [
    ({**TORCHRUN, "RANK": "abc"}, "RANK='abc': not an integer"),
    ({**TORCHRUN, "RANK": "4"}, "RANK=4: not in [0, WORLD_SIZE=4)"),
    ({**TORCHRUN, "WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE=0"),
    ({**TORCHRUN, "LOCAL_RANK": "2"}, "LOCAL_RANK=2: not in [0, LOCAL_WORLD_SIZE=2)"),
    ({**TORCHRUN, "MASTER_PORT": "70000"}, "MASTER_PORT=70000"),
    ({k: v for k, v in TORCHRUN.items() if k != "MASTER_ADDR"}, "MASTER_ADDR: not set"),
    ({**SRUN, "SLURM_PROCID": "x"}, "SLURM_PROCID='x'"),
    ({**SRUN, "SLURM_PROCID": "4"}, "SLURM_PROCID=4: not in [0, SLURM_NTASKS=4)"),
    ({**SRUN, "SLURM_STEP_NODELIST": "node[1-"}, "SLURM_STEP_NODELIST='node[1-'"),
    ({**SRUN, "SLURM_STEP_TASKS_PER_NODE": "2(x"}, "SLURM_STEP_TASKS_PER_NODE"),
    ({k: v for k, v in SRUN.items() if k != "SLURM_JOB_ID"}, "SLURM_JOB_ID: not set"),
])
def test_malformed_values_name_the_variable(env, fragment):
    with pytest.raises(InputError) as err:
        discover_world(env)
    assert fragment in str(err.value)


@pytest.mark.parametrize("text, hosts", [
    ("a[1-3,5],b7,c[01-02]", ["a1", "a2", "a3", "a5", "b7", "c01", "c02"]),
    ("node[001-004,007],gpu2", ["node001", "node002", "node003", "node004", "node007", "gpu2"]),
    ("vm", ["vm"]),
    ("n[9-11]", ["n9", "n10", "n11"]),
    ("r[1-2]-n[01-02]", ["r1-n01", "r1-n02", "r2-n01", "r2-n02"]),
    ("host-1.example.org,host-2", ["host-1.example.org", "host-2"]),
])
def test_expand_hostlist(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("bad", ["a[1-3", "a1-3]", "a[x-3]", "a[3-1]", "a[[1]]", ""])
def test_expand_hostlist_rejects(bad):
    with pytest.raises(ValueError):
        expand_hostlist(bad)


def test_expand_tasks_per_node():
    assert expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert expand_tasks_per_node("4") == [4]
    with pytest.raises(ValueError):
        expand_tasks_per_node("2(x3")


PROBE = ("import json; from dist_train.runtime.env import discover_world_from_os as d; w = d(); "
         "print(json.dumps([w.rank, w.world_size, w.local_rank, w.master_addr, w.master_port, w.launcher]))")


def _worlds(stdout: str) -> list[list]:
    # mpiexec may forward both ranks' lines glued together: pick out each JSON list
    return sorted(json.loads(m) for m in re.findall(r"\[[^\[\]]*\]", stdout))


@pytest.mark.multiproc
def test_real_mpiexec_two_ranks(repo_root):
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    out = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", PROBE], capture_output=True,
                         text=True, timeout=120, env=env, cwd=repo_root)
    assert out.returncode == 0, out.stderr
    worlds = _worlds(out.stdout)
    assert [w[0] for w in worlds] == [0, 1] and {w[1] for w in worlds} == {2}
    assert {w[2] for w in worlds} == {0, 1} and {w[5] for w in worlds} == {"mpi"}
    assert len({(w[3], w[4]) for w in worlds}) == 1  # rank 0's address and port reached rank 1


@pytest.mark.multiproc
@pytest.mark.slurm
def test_real_srun_two_tasks(repo_root, slurm_cluster):
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    out = subprocess.run(["srun", "-n", "2", "--time=2", sys.executable, "-c", PROBE], capture_output=True,
                         text=True, timeout=120, env=env, cwd=repo_root)
    assert out.returncode == 0, out.stderr
    worlds = _worlds(out.stdout)
    assert [w[:3] for w in worlds] == [[0, 2, 0], [1, 2, 1]]
    assert {w[5] for w in worlds} == {"slurm"} and len({(w[3], w[4]) for w in worlds}) == 1
