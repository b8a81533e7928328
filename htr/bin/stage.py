"""Stage records: each recipe stage says that it finished, and with what.

    python -m htr.bin.stage begin dump/feats/stages/3.features.json
    python -m htr.bin.stage done dump/feats/stages/3.features.json --inputs data/train --outputs dump/feats/org/train
    python -m htr.bin.stage require dump/feats/stages/3.features.json data/token_list/char/stages/5.token_list.json

A record `<dir>/<N>.<name>.json` is stage N's: `done` writes it (atomically) once the stage has
finished, with the size and mtime_ns of each file it read and wrote (a directory stands for the
plain files directly in it). `begin` removes it, so a stage killed midway leaves none. `require`,
before a later stage starts, checks that each named stage finished and that none of its inputs and
outputs has changed since; otherwise one line names the stage to rerun and the exit status is 1.
"""
import argparse
import datetime
import json
import os
import re
from pathlib import Path

from htr.errors import UserError, run_tool
from htr.utils.atomic import atomic_write

NAME = re.compile(r"(\d+)\.(\w+)\.json")


class StageError(UserError):
    """A required stage did not finish, or its files changed since."""


class Record:
    def __init__(self, path, rerun="./run.sh"):
        self.path = Path(path)
        m = NAME.fullmatch(self.path.name)
        if not m:
            raise UserError(f"{path}: a stage record is named <N>.<name>.json")
        self.number, self.name, self.rerun = int(m.group(1)), m.group(2), rerun

    def fail(self, why):
        n = self.number
        raise StageError(f"{why}: rerun it: {self.rerun} --stage {n} --stop_stage {n}")

    def __str__(self):
        return f"stage {self.number} ({self.name})"


def files_of(paths, what):
    """Each file named, a directory as the plain files directly in it (temp files left out)."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(str(f) for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(str(p))
        else:
            raise UserError(f"{p}: not found ({what})")
    return files


def fingerprint(path):
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def begin(record):
    record.path.unlink(missing_ok=True)


def done(record, inputs, outputs):
    info = {"stage": record.number, "name": record.name,
            "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "inputs": {f: fingerprint(f) for f in files_of(inputs, f"an input of {record}")},
            "outputs": {f: fingerprint(f) for f in files_of(outputs, f"an output of {record}")}}
    with atomic_write(record.path) as f:
        json.dump(info, f, indent=1)


def check(record):
    """Stage `record` finished and nothing it read or wrote has changed since."""
    if not record.path.exists():
        record.fail(f"{record} did not finish (no record {record.path})")
    try:
        info = json.loads(record.path.read_text())
        files = [(f, fp, "") for f, fp in info["outputs"].items()]
        files += [(f, fp, f" (an input of {record})") for f, fp in info["inputs"].items()]
    except (ValueError, KeyError, AttributeError) as e:
        raise UserError(f"{record.path}: not a stage record ({e})") from None
    for f, recorded, role in files:
        if not os.path.exists(f):
            record.fail(f"{f}{role} is gone since {record} finished")
        if fingerprint(f) != recorded:
            record.fail(f"{f}{role} changed since {record} finished")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("begin", help="a stage starts: remove its record").add_argument("record")
    d = sub.add_parser("done", help="a stage finished: record its inputs and outputs")
    d.add_argument("record")
    d.add_argument("--inputs", nargs="*", default=[], help="files (or directories) the stage read")
    d.add_argument("--outputs", nargs="*", default=[], help="files (or directories) the stage wrote")
    r = sub.add_parser("require", help="before a stage: the stages it reads from finished, unchanged")
    r.add_argument("records", nargs="+")
    r.add_argument("--rerun", default="./run.sh", help="the command the message tells to rerun a stage with")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.command == "begin":
        begin(Record(args.record))
    elif args.command == "done":
        done(Record(args.record), args.inputs, args.outputs)
    else:
        for record in sorted((Record(r, args.rerun) for r in args.records), key=lambda r: r.number):
            check(record)  # the earliest stage that needs rerunning is named


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
