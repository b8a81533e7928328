"""Stopping cleanly when the cluster asks: SIGTERM (scancel, preemption, a node draining) and
SIGUSR1 (Slurm's `--signal=USR1@T`, sent T seconds before the time limit) make every rank finish
the update in progress, rank 0 write a checkpoint at that exact batch, and the job exit with
PREEMPTED (75, EX_TEMPFAIL: "try again later"). `htr.jobs --requeue N` resubmits a job that exits
so, and `--resume true` continues at the next batch.

Checkpoints are also written on a schedule (--save_every_steps, --save_every_minutes), so a
SIGKILL or a dead node loses at most that much work.
"""
import logging
import signal
import threading
import time

PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """Raised after the checkpoint is written; the process exits with PREEMPTED."""


class StopSignal:
    """Remembers the first SIGTERM/SIGUSR1; the trainer polls `received` between steps."""

    def __init__(self):
        self.received = None
        self.previous = {}

    def install(self):
        if threading.current_thread() is threading.main_thread():  # Python's signal handlers live there
            for sig in SIGNALS:
                self.previous[sig] = signal.signal(sig, self.handle)
        return self

    def handle(self, signum, frame):
        if self.received is None:
            self.received = signal.Signals(signum).name
            logging.warning("%s received: finishing this update, writing a checkpoint, then exiting with %d",
                            self.received, PREEMPTED)

    def uninstall(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}


class SaveSchedule:
    """When a mid-epoch checkpoint is due: every N updates, and/or every M minutes of training."""

    def __init__(self, every_steps=None, every_minutes=None):
        self.every_steps, self.every_minutes = every_steps, every_minutes
        self.last = time.monotonic()

    def steps_due(self, updates):
        return bool(self.every_steps) and updates % self.every_steps == 0

    def time_due(self):
        return bool(self.every_minutes) and time.monotonic() - self.last >= 60 * self.every_minutes

    def saved(self):
        self.last = time.monotonic()
