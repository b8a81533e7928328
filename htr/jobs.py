"""Run a command as N parallel jobs, Kaldi run.pl style, on this machine, Slurm or hosts over ssh.

    <launcher> [options] JOB=1:N exp/log/foo.JOB.log cmd --arg JOB ...
    <launcher> [options] exp/log/foo.log cmd ...

`JOB` (any name before '=') is replaced by the job number in the log path and the command. Each
job's output goes to its log file between a header (the command, start time) and a footer (exit
code, elapsed time), as run.pl writes them. Arguments without white space pass to bash as they
are (so `"|"` or `">"` work as in run.pl), others are quoted. The launcher exits 0 when every job
succeeded, else 1 after naming the failed jobs' log files.

Backends (cmd.sh chooses one):
- local: subprocesses here, at most --max_jobs_run at a time; the cores are shared out among the
  jobs running at once (OMP_NUM_THREADS, unless set by the user).
- slurm: one `sbatch --wait --array=1-N` job array; --gpu/--mem/--time/--num_threads/--partition
  map to Slurm options; --num_nodes K > 1 asks for K nodes and starts the command under `srun`
  (one task per GPU: the trainer's --dist_launcher slurm reads its rank from Slurm).
  --requeue K: preemption-safe training. The job may be requeued by Slurm (sbatch --requeue), gets
  SIGUSR1 --signal_lead seconds before its time limit (passed on to the command, as SIGTERM is),
  and a job that exits with status 75 (the trainer's "checkpoint written on a signal: rerun to
  continue") is resubmitted, up to K times; with --resume true it continues at the next batch.
- ssh: jobs go round-robin to the hosts of --hosts (a file, one host per line, or a comma list);
  each runs `cd <this dir> && . ./path.sh` first, so a shared file system is assumed.

Live status (every backend: the logs are read where they are written, a shared file system for slurm
and ssh): while the jobs run, the launcher follows their log files and shows the latest progress line
(htr.utils.progress's, or the trainer's `epoch E step/total: ...`; Progress lines of parallel jobs are
summed) on stdout: one line rewritten in place on a terminal, cleared at the end; elsewhere a plain line
at most every $HTR_PROGRESS_INTERVAL seconds (default 30) and one at the end. HTR_PROGRESS_INTERVAL=off
shows none. The log files are not touched.
"""
import argparse
import contextlib
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from htr.utils import progress
from htr.errors import UserError

JOB_RANGE = re.compile(r"^([A-Za-z_]\w*)=(\d+):(\d+)$")


def parse(argv):
    p = argparse.ArgumentParser(prog="htr-run_jobs", usage="%(prog)s [options] [JOB=1:N] LOG COMMAND...",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("local", "slurm", "ssh"), default="local")
    p.add_argument("--max_jobs_run", "--max-jobs-run", type=int, default=None, help="jobs at once (default all)")
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--mem", default=None, help="memory per job, e.g. 4G")
    p.add_argument("--time", default=None, help="time limit per job, e.g. 24:00:00")
    p.add_argument("--num_threads", "--num-threads", type=int, default=1)
    p.add_argument("--num_nodes", "--num-nodes", type=int, default=1)
    p.add_argument("--partition", default=None)
    p.add_argument("--hosts", default=None, help="ssh backend: host file or comma-separated hosts")
    p.add_argument("--requeue", type=int, default=0,
                   help="slurm backend: resubmit a job that exits with 75 (checkpointed on a signal) up to K times")
    p.add_argument("--signal_lead", type=int, default=180,
                   help="with --requeue: seconds before the time limit at which the job gets SIGUSR1")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    rest = args.rest
    m = JOB_RANGE.match(rest[0]) if rest else None
    if m:
        args.job_var, args.first, args.last = m.group(1), int(m.group(2)), int(m.group(3))
        rest = rest[1:]
        if args.last < args.first:
            p.error(f"empty job range {m.group(0)}")
    else:
        args.job_var, args.first, args.last = None, 1, 1
    if len(rest) < 2:
        p.error("expected a log file and a command")
    args.log, args.command = rest[0], rest[1:]
    if args.job_var and args.job_var not in args.log:
        p.error(f"the log file {args.log} must contain {args.job_var} when running {args.job_var}=... jobs")
    if args.num_nodes > 1 and args.backend != "slurm":
        p.error("--num_nodes > 1 needs the slurm backend")
    if args.requeue and args.backend != "slurm":
        p.error("--requeue needs the slurm backend")
    return args


def shell_command(words):
    """run.pl's joining: words without white space as they are, others quoted."""
    return " ".join(w if re.fullmatch(r"\S+", w) else shlex.quote(w) for w in words)


def substitute(text, var, value):
    return re.sub(rf"\b{var}\b", str(value), text) if var else text


def job_ids(args):
    return list(range(args.first, args.last + 1))


def log_header(command):
    return f"# {command}\n# Started at {datetime.datetime.now().ctime()}\n#\n"


def log_footer(code, seconds, threads=1):
    return (f"# Accounting: time={int(seconds)} threads={threads}\n"
            f"# Ended (code {code}) at {datetime.datetime.now().ctime()}, elapsed time {int(seconds)} seconds\n")


def thread_env(threads):
    """The environment of a job: OMP/MKL threads as given, unless the user set OMP_NUM_THREADS."""
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def local_threads(args):
    """Cores shared out among the jobs that run at once (one job gets them all; N jobs on N cores
    one each), so parallel torch jobs do not oversubscribe the machine."""
    at_once = min(args.max_jobs_run or len(job_ids(args)), len(job_ids(args)))
    return max(1, (os.cpu_count() or 1) // at_once)


def run_logged(argv, log_path, command, env=None):
    """Run argv with stdout/stderr appended to log_path between run.pl's header and footer."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(log_path, "w") as log:
        log.write(log_header(command))
        log.flush()
        code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.write(log_footer(code, time.monotonic() - start))
    return code


def run_parallel(args, one):
    """{job: exit code} of one(job) for every job, at most --max_jobs_run at a time."""
    with ThreadPoolExecutor(args.max_jobs_run or len(job_ids(args))) as pool:
        return dict(zip(job_ids(args), pool.map(one, job_ids(args))))


def run_local(args):
    env = thread_env(local_threads(args))

    def one(job):
        command = substitute(shell_command(args.command), args.job_var, job)
        return run_logged(["bash", "-c", command], substitute(args.log, args.job_var, job), command, env)

    return run_parallel(args, one)


def read_hosts(spec):
    if not spec:
        raise SystemExit("htr-run_jobs: the ssh backend needs --hosts FILE or --hosts a,b,c")
    if Path(spec).is_file():
        hosts = [h.split("#")[0].strip() for h in Path(spec).read_text().splitlines()]
    else:
        hosts = spec.split(",")
    hosts = [h for h in hosts if h]
    if not hosts:
        raise SystemExit(f"htr-run_jobs: no hosts in {spec}")
    return hosts


def run_ssh(args):
    hosts = read_hosts(args.hosts)
    setup = (f"cd {shlex.quote(os.getcwd())} && {{ [ ! -f path.sh ] || . ./path.sh; }} && "
             f"export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-{args.num_threads}}}")

    def one(job):
        command = substitute(shell_command(args.command), args.job_var, job)
        host = hosts[(job - args.first) % len(hosts)]
        remote = f"{setup} && ( {command} )"
        return run_logged(["ssh", "-o", "BatchMode=yes", host, remote], substitute(args.log, args.job_var, job),
                          f"[{host}] {command}")

    return run_parallel(args, one)


def slurm_script(args, queue_dir, name):
    """A job-array script: job number from SLURM_ARRAY_TASK_ID, run.pl log format, exit code to a file."""
    job = '"${SLURM_ARRAY_TASK_ID}"'
    command = substitute(shell_command(args.command), args.job_var, "${SLURM_ARRAY_TASK_ID}")
    log = substitute(args.log, args.job_var, "${SLURM_ARRAY_TASK_ID}")
    run = f"srun --ntasks-per-node={max(args.gpu, 1)} bash -c {shlex.quote(command)}" if args.num_nodes > 1 \
        else f"( {command} )"
    run = forwarding_signals(run) if args.requeue else f'{run} >> "$log" 2>&1\ncode=$?'
    return f"""#!/usr/bin/env bash
cd {shlex.quote(os.getcwd())}
[ ! -f path.sh ] || . ./path.sh
export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-{args.num_threads}}}
log="{log}"
mkdir -p "$(dirname "$log")"
start=$(date +%s)
{{ echo "# "{shlex.quote(command)}; echo "# Started at $(date)"; echo "#"; }} > "$log"
{run}
elapsed=$(( $(date +%s) - start ))
echo "# Accounting: time=$elapsed threads={args.num_threads}" >> "$log"
echo "# Ended (code $code) at $(date), elapsed time $elapsed seconds" >> "$log"
echo $code > {shlex.quote(str(queue_dir))}/{name}.done.{job}
exit $code
"""


PREEMPTED = 75  # htr.train.preemption.PREEMPTED (not imported: the launcher does not load torch)


def forwarding_signals(run):
    """Run the command in the background and pass SIGUSR1/SIGTERM on to it: `--signal=B:USR1@T`
    reaches only the batch shell, and a shell killed by SIGTERM would never write the exit code."""
    return f"""child=
trap '[ -z "$child" ] || kill -USR1 $child 2>/dev/null' USR1
trap '[ -z "$child" ] || kill -TERM $child 2>/dev/null' TERM
{run} >> "$log" 2>&1 &
child=$!
while :; do
    wait $child; code=$?
    kill -0 $child 2>/dev/null || break  # still running: a trapped signal interrupted the wait
done
if [ $code -gt 128 ]; then  # the wait was interrupted just as the command ended: ask for its status again
    wait $child 2>/dev/null; again=$?
    [ $again = 127 ] || code=$again
fi"""


def sbatch_options(args, queue_dir, name, jobs=None):
    jobs = jobs or job_ids(args)
    array = (f"{args.first}-{args.last}" if jobs == job_ids(args) else ",".join(map(str, jobs))) + \
        (f"%{args.max_jobs_run}" if args.max_jobs_run else "")
    opts = ["--parsable", "--wait", f"--job-name={name}", f"--array={array}",
            f"--output={queue_dir}/{name}.%a.out", f"--cpus-per-task={args.num_threads}"]
    if args.requeue:
        opts += ["--requeue", f"--signal=B:USR1@{args.signal_lead}"]
    if args.gpu:
        opts.append(f"--gres=gpu:{args.gpu}")
    if args.mem:
        opts.append(f"--mem={args.mem}")
    if args.time:
        opts.append(f"--time={args.time}")
    if args.partition:
        opts.append(f"--partition={args.partition}")
    if args.num_nodes > 1:
        opts += [f"--nodes={args.num_nodes}", f"--ntasks-per-node={max(args.gpu, 1)}"]
    return opts


def run_slurm(args):
    log = Path(substitute(args.log, args.job_var, "x"))
    queue_dir = (log.parent / "q").resolve()
    queue_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"\W", "_", Path(args.log).name.replace(f".{args.job_var}", "") if args.job_var
                  else Path(args.log).name).removesuffix("_log")
    for stale in queue_dir.glob(f"{name}.done.*"):
        stale.unlink()
    script = queue_dir / f"{name}.sh"
    script.write_text(slurm_script(args, queue_dir, name))
    script.chmod(0o755)
    codes, pending = {}, job_ids(args)
    for attempt in range(args.requeue + 1):
        if attempt:
            sys.stderr.write(f"htr-run_jobs: job(s) {', '.join(map(str, pending))} checkpointed on a signal "
                             f"(status {PREEMPTED}): resubmitting ({attempt} of {args.requeue})\n")
        codes.update(submit(args, queue_dir, name, script, pending))
        pending = [job for job in pending if codes[job] == PREEMPTED]
        if not pending:
            break
    return codes


def submit(args, queue_dir, name, script, jobs):
    """One `sbatch --wait` of the array jobs `jobs` -> {job: exit code}."""
    for job in jobs:
        (queue_dir / f"{name}.done.{job}").unlink(missing_ok=True)
    sbatch = subprocess.run(["sbatch", *sbatch_options(args, queue_dir, name, jobs), str(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if sbatch.returncode != 0 and not any((queue_dir / f"{name}.done.{job}").exists() for job in jobs):
        sys.stderr.write(f"htr-run_jobs: sbatch failed ({sbatch.returncode}): {sbatch.stdout}")
    codes = {}
    for job in jobs:
        done = queue_dir / f"{name}.done.{job}"
        codes[job] = int(done.read_text().strip() or 1) if done.exists() else 1  # no file: killed or never ran
    return codes


BACKENDS = {"local": run_local, "slurm": run_slurm, "ssh": run_ssh}

TRAIN_LINE = re.compile(r"epoch \d+ \d+/\d+: .*")  # the trainer's periodic line, after logging's prefix


class LogTail:
    """The latest progress line of a log file that a job is writing."""

    def __init__(self, path):
        self.path = Path(path)
        self.stale = self.signature()  # a previous run's log, until the job rewrites it
        self.offset, self.rest, self.line = 0, b"", None

    def signature(self):
        try:
            st = self.path.stat()
            return st.st_ino, st.st_size, st.st_mtime_ns
        except OSError:
            return None

    def poll(self):
        sig = self.signature()
        if sig is None or sig == self.stale:
            return
        self.stale = None
        if sig[1] < self.offset:  # rewritten (a job rerun, a Slurm requeue)
            self.offset, self.rest, self.line = 0, b"", None
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        *lines, self.rest = re.split(rb"[\r\n]", self.rest + data)
        for raw in reversed(lines):
            text = raw.decode("utf-8", "replace")
            if progress.parse(text):
                self.line = text.strip()
                return
            if m := TRAIN_LINE.search(text):
                self.line = m.group(0)
                return


def job_status(lines, elapsed):
    """One status from the jobs' latest progress lines: the first job's, or with several jobs, the sum
    of the Progress lines like the first one (rates add up)."""
    lines = [line for line in lines if line]
    if not lines:
        return None
    first = progress.parse(lines[0])
    if len(lines) == 1 or first is None:
        return lines[0]
    same = [p for p in map(progress.parse, lines) if p and p["desc"] == first["desc"]]
    count, total = sum(p["count"] for p in same), sum(p["total"] for p in same)
    return progress.line(first["desc"], count, total, elapsed, sum(p["rate"] for p in same), first["unit"])


def status_interval():
    value = os.environ.get("HTR_PROGRESS_INTERVAL", "30")
    if value.lower() in ("off", "none", ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise UserError(f"HTR_PROGRESS_INTERVAL={value!r}: expected seconds or 'off'") from None


class LiveStatus(threading.Thread):
    """Follows the jobs' logs and shows their status on stdout until stop()."""

    def __init__(self, args, stream=sys.stdout):
        super().__init__(daemon=True)
        logs = [substitute(args.log, args.job_var, job) for job in job_ids(args)]
        self.tails = [LogTail(log) for log in logs]
        jobs = f", {len(logs)} jobs" if len(logs) > 1 else ""
        self.label = f"[{Path(args.log).name}{jobs}]"
        self.stream, self.tty = stream, stream.isatty()
        self.interval = 0.5 if self.tty else max(status_interval(), 0.1)
        self.began, self.shown, self.lines, self.width = time.monotonic(), "", None, 0
        self.stopped = threading.Event()

    def status(self):
        """(the jobs' latest progress lines, the status line)"""
        for tail in self.tails:
            tail.poll()
        lines = tuple(t.line for t in self.tails)
        elapsed = time.monotonic() - self.began
        status = job_status(lines, elapsed)
        if status is None and self.tty:
            status = f"running {progress.duration(elapsed)}"
        return lines, status and f"  {self.label} {status}"

    def run(self):
        while not self.stopped.wait(self.interval):
            lines, status = self.status()
            if status and (status != self.shown if self.tty else lines != self.lines):  # plain lines: news only
                self.show(status)
                self.lines = lines

    def show(self, status):
        if self.tty:  # one line, cut to the terminal's width: a wrapped line cannot be rewritten
            status = status[:shutil.get_terminal_size().columns - 1]
            self.stream.write("\r" + status.ljust(self.width))
            self.width = len(status)
        else:
            self.stream.write(status + "\n")
        self.stream.flush()
        self.shown = status

    def stop(self):
        self.stopped.set()
        self.join()
        if self.tty:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        else:  # the final state, unless the last line showed it
            lines, status = self.status()
            if status and lines != self.lines:
                self.show(status)


@contextlib.contextmanager
def live_status(args):
    if status_interval() is None:
        yield
        return
    live = LiveStatus(args)
    live.start()
    try:
        yield
    finally:
        live.stop()


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    with live_status(args):
        codes = BACKENDS[args.backend](args)
    failed = [job for job, code in codes.items() if code != 0]
    if not failed:
        return 0
    if args.job_var is None:
        sys.stderr.write(f"htr-run_jobs: job failed with status {codes[1]}, log is in {args.log}\n")
    else:
        logs = ", ".join(substitute(args.log, args.job_var, j) for j in failed[:5])
        more = " ..." if len(failed) > 5 else ""
        sys.stderr.write(f"htr-run_jobs: {len(failed)} / {len(codes)} failed, log is in {logs}{more}\n")
    return 1
