"""Kaldi run.pl-style job launcher (local, slurm, ssh backends); see htr/jobs.py.

    python -m htr.bin.run_jobs --backend local JOB=1:4 exp/log/x.JOB.log echo JOB
"""

from htr.jobs import main
from htr.errors import run_tool

if __name__ == "__main__":
    raise SystemExit(run_tool(main))
