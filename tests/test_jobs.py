"""The job launcher (htr.jobs): local jobs, and the slurm and ssh backends through stand-in
sbatch/srun/ssh executables (tests/standins) that record their arguments and run locally."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

STANDINS = REPO / "tests" / "standins"


def launch(tmp_path, *args, backend="local"):
    env = dict(os.environ, PATH=f"{STANDINS}:{os.environ['PATH']}", STANDIN_RECORD=str(tmp_path / "record"),
               PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "htr.bin.run_jobs", "--backend", backend, *map(str, args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def record(tmp_path):
    path = tmp_path / "record"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("backend", ["local", "slurm", "ssh"])
def test_jobs_substitute_log_and_succeed(tmp_path, backend):
    extra = ["--hosts", "node1,node2"] if backend == "ssh" else []
    r = launch(tmp_path, *extra, "JOB=1:3", "log/echo.JOB.log", "echo", "job", "JOB", "of 3", "|", "tr", "a-z", "A-Z",
               backend=backend)
    assert r.returncode == 0, r.stderr
    for job in (1, 2, 3):
        log = (tmp_path / f"log/echo.{job}.log").read_text()
        assert f"JOB {job} OF 3" in log
        assert log.startswith("# ") and "echo job" in log.splitlines()[0] and "# Ended (code 0)" in log
    calls = record(tmp_path)
    if backend == "slurm":
        assert len(calls) == 1 and "--array=1-3" in calls[0] and "--wait" in calls[0]
    if backend == "ssh":
        assert len(calls) == 3
        assert sorted(c.split()[3] for c in calls) == ["node1", "node1", "node2"]  # round robin
        assert all(f"cd {tmp_path}" in c for c in calls)


@pytest.mark.parametrize("backend", ["local", "slurm", "ssh"])
def test_failed_job_names_its_log(tmp_path, backend):
    extra = ["--hosts", "node1"] if backend == "ssh" else []
    r = launch(tmp_path, *extra, "JOB=1:3", "log/t.JOB.log", "test", "JOB", "-ne", "2", backend=backend)
    assert r.returncode == 1
    assert "1 / 3 failed, log is in log/t.2.log" in r.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/t.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/t.3.log").read_text()


def test_slurm_options_reach_sbatch(tmp_path):
    r = launch(tmp_path, "--gpu", 2, "--mem", "8G", "--time", "2:00:00", "--num_threads", 4, "--partition", "gpu",
               "--max_jobs_run", 2, "JOB=1:4", "log/s.JOB.log", "true", backend="slurm")
    assert r.returncode == 0, r.stderr
    (call,) = record(tmp_path)
    for opt in ("--gres=gpu:2", "--mem=8G", "--time=2:00:00", "--cpus-per-task=4", "--partition=gpu",
                "--array=1-4%2"):
        assert opt in call.split(), call


def test_slurm_multi_node_runs_tasks_under_srun(tmp_path):
    r = launch(tmp_path, "--gpu", 2, "--num_nodes", 2, "log/train.log",
               "bash", "-c", 'echo rank $SLURM_PROCID of $SLURM_NTASKS', backend="slurm")
    assert r.returncode == 0, r.stderr
    sbatch, srun = record(tmp_path)
    assert "--nodes=2" in sbatch and "--ntasks-per-node=2" in sbatch
    assert srun.startswith("srun --ntasks-per-node=2")
    log = (tmp_path / "log/train.log").read_text()
    assert "rank 0 of 2" in log and "rank 1 of 2" in log


def test_usage_errors(tmp_path):
    assert "must contain JOB" in launch(tmp_path, "JOB=1:2", "log/x.log", "true").stderr
    assert "needs the slurm backend" in launch(tmp_path, "--num_nodes", 2, "log/x.log", "true").stderr
    assert "--hosts" in launch(tmp_path, "log/x.log", "true", backend="ssh").stderr


def test_local_jobs_share_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert launch(tmp_path, "JOB=1:2", "log/t.JOB.log", "bash", "-c", "echo threads=$OMP_NUM_THREADS").returncode == 0
    assert f"threads={max(1, os.cpu_count() // 2)}" in (tmp_path / "log/t.1.log").read_text()
    assert launch(tmp_path, "log/one.log", "bash", "-c", "echo threads=$OMP_NUM_THREADS").returncode == 0
    assert f"threads={os.cpu_count()}" in (tmp_path / "log/one.log").read_text()


def test_slurm_requeue_resubmits_the_jobs_that_checkpointed_on_a_signal(tmp_path):
    # job 2 exits 75 (checkpoint written on a signal) on its first two runs, then finishes
    counter = tmp_path / "runs"
    counter.mkdir()
    command = ["bash", "-c", f"touch {counter}/JOB.$RANDOM$RANDOM; "
               f"[ JOB != 2 ] || [ $(ls {counter} | grep -c '^2[.]') -ge 3 ] || exit 75"]
    r = launch(tmp_path, "--requeue", 3, "--time", "1:00:00", "JOB=1:3", "log/t.JOB.log", *command, backend="slurm")
    assert r.returncode == 0, r.stderr
    calls = record(tmp_path)
    assert len(calls) == 3 and "--array=1-3" in calls[0] and "--array=2 " in calls[1] + " "
    assert all("--requeue" in c and "--signal=B:USR1@180" in c for c in calls)
    assert r.stderr.count("checkpointed on a signal (status 75): resubmitting") == 2
    assert "# Ended (code 0)" in (tmp_path / "log/t.2.log").read_text()
    # out of requeues: the job fails with its log named
    r = launch(tmp_path, "--requeue", 1, "log/p.log", "bash", "-c", "exit 75", backend="slurm")
    assert r.returncode == 1 and "log is in log/p.log" in r.stderr


def test_slurm_script_passes_usr1_on_to_the_command(tmp_path):
    """Slurm's --signal=B:USR1@T signals the batch shell alone: the script must hand it to the
    command and still record the command's exit status."""
    script = tmp_path / "waits.py"
    script.write_text("import os, signal, sys, time\n"
                      "got = []\nsignal.signal(signal.SIGUSR1, lambda s, f: got.append(s))\n"
                      "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
                      "while not got: time.sleep(0.02)\nprint('saved a checkpoint'); sys.exit(75)\n")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    make = subprocess.run([sys.executable, "-c", "import sys; from htr import jobs; a = jobs.parse(sys.argv[1:]); "
                           "print(jobs.slurm_script(a, sys.argv[-1].rsplit('/', 1)[0] + '/q', 'w'))",
                           "--backend", "slurm", "--requeue", "1", "log/w.log", sys.executable, str(script),
                           str(tmp_path / "pid")], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    (tmp_path / "q").mkdir()
    (tmp_path / "w.sh").write_text(make.stdout)
    shell = subprocess.Popen(["bash", str(tmp_path / "w.sh")], cwd=tmp_path, env={**env, "SLURM_ARRAY_TASK_ID": "1"})
    deadline = time.monotonic() + 30
    while not (tmp_path / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    shell.send_signal(signal.SIGUSR1)
    assert shell.wait(timeout=30) == 75
    assert (tmp_path / "q" / "w.done.1").read_text().strip() == "75"
    log = (tmp_path / "log" / "w.log").read_text()
    assert "saved a checkpoint" in log and "# Ended (code 75)" in log
