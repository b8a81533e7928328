"""Train a recogniser (ESPnet's asr_train options and output layout).

    python -m htr.bin.ocr_train --collect_stats true --output_dir exp/stats \\
        --train_data_path_and_name_and_type dump/train/feats.scp,speech,kaldi_ark \\
        --train_data_path_and_name_and_type dump/train/text,text,text  (same for valid) \\
        --token_list tokens.txt
    python -m htr.bin.ocr_train --config conf/train.yaml --output_dir exp/train \\
        --normalize_conf stats_file=exp/stats/train/feats_stats.npz \\
        --train_shape_file exp/stats/train/speech_shape ... --ngpu 1

`--ngpu N` starts N processes (DDP); `--dist_backend gloo` runs them on CPU; torchrun and
`--dist_launcher slurm` start one process per rank themselves. `--resume true` continues from
<output_dir>/checkpoint.pth.
"""
import sys

import yaml

from htr.train import distributed
from htr.train.collect_stats import collect_stats
from htr.train.options import parse_args
from htr.train.trainer import setup_logging, train
from htr.errors import run_tool


def main(argv=None):
    args = parse_args(argv)
    if args.print_config:
        yaml.safe_dump(vars(args), sys.stdout, sort_keys=False)
        return
    if not args.output_dir:
        raise SystemExit("--output_dir is required")
    if not args.token_list:
        raise SystemExit("--token_list is required")
    if args.collect_stats:
        setup_logging(args, distributed.DistInfo())
        collect_stats(args)
        return
    try:
        distributed.launch(train, args)
    except Exception as e:  # a failed rank: report it in one line, exit non-zero
        if type(e).__name__ in ("ProcessRaisedException", "ProcessExitedException"):
            raise SystemExit(f"training failed in a worker process: {e}") from None
        raise


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
