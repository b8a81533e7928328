"""A data loader that outlives its workers: one that dies (a segfaulting decoder, the OOM killer)
or hangs (a stalled network file system, a pipe that never ends) on one file is replaced, the
utterance it was loading is named, skipped and counted (`skipped_utts`), and the epoch goes on.

Each worker notes in shared memory which utterance it is loading and since when. When torch's
DataLoader reports a dead worker or a timeout, the utterances then in progress are loaded again,
each alone in a fresh process with a time limit; those that crash or hang there are the culprits.
The loader restarts at the first batch not yet delivered, without them, so the batch order (and a
mid-epoch resume) is unchanged. With --num_workers 0 there is no worker to lose: loading runs in
the trainer's own process.
"""
import ctypes
import logging
import multiprocessing
import os
import signal
import time

import torch

PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies


class TrackedDataset(torch.utils.data.Dataset):
    """Wraps a dataset keyed by utterance; records each worker's current item in `slots`
    ((workers, 3) float64 shared tensor: utterance index (-1 when idle), start time, worker pid)."""

    def __init__(self, dataset, keys, workers):
        self.dataset, self.keys = dataset, list(keys)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.slots = torch.full((max(workers, 1), 3), -1.0, dtype=torch.float64).share_memory_()

    def __getitem__(self, utt):
        info = torch.utils.data.get_worker_info()
        slot = self.slots[info.id if info else 0]
        slot[1], slot[2] = time.time(), os.getpid()
        slot[0] = self.index.get(utt, -1)
        try:
            return self.dataset[utt]
        finally:
            slot[0] = -1

    def __len__(self):
        return len(self.keys)

    def in_progress(self, older_than=0.0):
        """Utterances a worker started (at least `older_than` seconds ago) and has not finished."""
        now = time.time()
        rows = sorted((t, int(i)) for i, t, _ in self.slots.tolist() if i >= 0 and now - t >= older_than)
        return [self.keys[i] for _, i in rows]

    def pids_on(self, utts):
        wanted = {self.index[u] for u in utts}
        return [int(pid) for i, _, pid in self.slots.tolist() if int(i) in wanted and pid > 0]


LOST = ("exited unexpectedly", "is killed by signal", "DataLoader timed out")


def worker_failed(error):
    """Is this DataLoader error a lost worker (died, killed, timed out)? An exception raised in a
    worker ("Caught ... in DataLoader worker process") is a bug, re-raised as it is."""
    return isinstance(error, RuntimeError) and any(text in str(error) for text in LOST)


def die_with_parent(*_):
    """A worker the kernel kills when the trainer dies (Linux): a SIGKILLed trainer must not leave
    its workers behind (one waiting on a queue nobody reads lives on)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the worker's own parent watchdog remains
        pass
    if os.getppid() == 1:  # the trainer died before prctl took effect
        os._exit(1)


def _load_alone(dataset, utt):
    die_with_parent()
    os.setsid()  # its own process group: a hung pipe command it started is killed with it
    dataset[utt]


def crashes_alone(dataset, utt, timeout):
    """Load one utterance in a fresh process: -> why it fails ('killed by SIGKILL', 'hung for 30 s'), or None."""
    proc = multiprocessing.get_context("fork").Process(target=_load_alone, args=(dataset, utt), daemon=True)
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.join()
        return f"loading it hung for more than {timeout:g} s"
    if proc.exitcode == 0:
        return None
    if proc.exitcode < 0:
        return f"loading it killed the process ({signal.Signals(-proc.exitcode).name})"
    return f"loading it made the process exit with status {proc.exitcode}"


class ResilientLoader:
    """Iterates `batches` (lists of utterance keys) as torch's DataLoader would, surviving its workers.
    Batches are yielded one per entry, with lost utterances left out and listed in batch["skipped"]."""

    def __init__(self, dataset, batches, collate, num_workers, timeout, seed, describe=str, stopping=lambda: False):
        self.dataset, self.batches, self.collate = dataset, batches, collate
        self.num_workers, self.timeout, self.seed, self.describe = num_workers, timeout, seed, describe
        self.stopping = stopping  # the job was signalled: Slurm's SIGTERM reaches the workers too
        self.poll = max(0.5, min(5.0, timeout / 2))  # how often a silent loader is checked on
        self.bad = {}  # utt -> reason

    def data_loader(self, batches, tracked):
        # Its own generator: creating the iterator must not draw from the global RNG, or a run
        # resumed mid-epoch would see different dropout than an uninterrupted one.
        options = {"num_workers": self.num_workers, "generator": torch.Generator().manual_seed(self.seed)}
        if self.num_workers > 0:
            options.update(timeout=self.poll, worker_init_fn=die_with_parent)
        return torch.utils.data.DataLoader(tracked, batch_sampler=batches, collate_fn=self.collate, **options)

    def __iter__(self):
        done, news = 0, []
        keys = sorted({k for b in self.batches for k in b})
        while done < len(self.batches):
            tracked = TrackedDataset(self.dataset, keys, self.num_workers)
            remaining = [[k for k in b if k not in self.bad] for b in self.batches[done:]]
            restarted_at = done
            batches = iter(self.data_loader(remaining, tracked))
            quiet_sigchld()
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                except RuntimeError as e:
                    if not worker_failed(e):
                        raise
                    if self.waiting(e, tracked):
                        continue  # slow, not hung: keep waiting
                    if self.stopping():  # the signal killed them, not the data: new workers finish the update
                        logging.warning("data-loader workers stopped by the signal: restarting them")
                        break
                    found = self.find_culprits(tracked, remaining[done - restarted_at], e)
                    for pid in tracked.pids_on(found):  # a hung worker: with whatever it started
                        kill_tree(pid)
                    news += found
                    logging.warning("data-loader worker lost (%s); restarting the workers at batch %d of %d "
                                    "without %s", str(e).splitlines()[0], done + 1, len(self.batches),
                                    ", ".join(found))
                    break
                batch["skipped"] = batch["skipped"] + [(u, self.bad[u]) for u in news]
                news = []
                done += 1
                yield batch

    def waiting(self, error, tracked):
        """A poll timed out while every worker is alive and none has been on one item too long."""
        return "timed out" in str(error) and not tracked.in_progress(older_than=self.timeout)

    def find_culprits(self, tracked, next_batch, error):
        """The utterances that crash or hang when loaded alone, among those in progress (else the
        next batch's); recorded in self.bad with the reason."""
        if "timed out" in str(error):
            suspects = tracked.in_progress(older_than=self.timeout)
        else:
            suspects = tracked.in_progress() or list(next_batch)
        found = []
        for utt in suspects:
            why = crashes_alone(self.dataset, utt, self.timeout)
            if why:
                self.bad[utt] = f"data-loader worker lost on {self.describe(utt)}: {why}"
                found.append(utt)
        if not found:
            raise RuntimeError(f"{str(error).splitlines()[0]}, but none of {', '.join(suspects) or 'its items'} "
                               "fails when loaded alone: not a data problem") from error
        return found


def descendants(pid):
    """The processes below `pid` (from /proc; none where there is no /proc)."""
    children = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_tree(pid):
    """SIGKILL a process and everything it started (a pipe command would outlive its worker)."""
    for p in descendants(pid) + [pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def quiet_sigchld():
    """torch reports a dead worker from a SIGCHLD handler, i.e. as an exception raised on whatever
    line the trainer is at (mid-step); without it, the loader itself reports it on the next batch
    (within one poll), where it can be handled."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    except ValueError:  # not the main thread: torch installs no handler there either
        pass
