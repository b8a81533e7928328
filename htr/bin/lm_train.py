"""Train a token language model (ESPnet's lm_train options and output layout) with the same
trainer as ocr_train: checkpoints, n-best averaging, resume, DDP.

    python -m htr.bin.lm_train --collect_stats true --output_dir exp/lm_stats \\
        --train_data_path_and_name_and_type data/lm_train.txt,text,text \\
        --valid_data_path_and_name_and_type dump/valid/text,text,text --token_list tokens.txt
    python -m htr.bin.lm_train --config conf/train_lm.yaml --output_dir exp/lm_train \\
        --train_data_path_and_name_and_type data/lm_train.txt,text,text \\
        --valid_data_path_and_name_and_type dump/valid/text,text,text --token_list tokens.txt

The text files are Kaldi `text` files ('utt-id sentence'). --collect_stats writes
<output_dir>/{train,valid}/text_shape.<token_type> ('utt tokens,vocab'); training writes
config.yaml, checkpoints and valid.loss.ave.pth, and logs ppl (exp of the per-token loss).
"""
import sys

import yaml

from htr.data.datadir import read_text, write_kv
from htr.text.tokenizer import build_tokenizer
from htr.train import distributed
from htr.train.dataset import sources_from_triples
from htr.train.options import parse_args
from htr.train.tasks import LMTask, token_list_of
from htr.train.trainer import train
from htr.errors import run_tool


def collect_text_shapes(args):
    token_list = token_list_of(args)
    tokenizer = build_tokenizer(args.token_type, token_list, args.bpemodel)
    for split in ("train", "valid"):
        triples = getattr(args, f"{split}_data_path_and_name_and_type")
        text = read_text(sources_from_triples(triples, split, needed=("text",))["text"])
        shapes = {u: f"{len(tokenizer.encode(t))},{len(token_list)}" for u, t in text.items()}
        write_kv(f"{args.output_dir}/{split}/text_shape.{args.token_type}", shapes)


def lm_worker(args, info):
    train(args, info, LMTask())


def main(argv=None):
    args = parse_args(argv, task="lm")
    if args.print_config:
        yaml.safe_dump(vars(args), sys.stdout, sort_keys=False)
        return
    if not args.output_dir or not args.token_list:
        raise SystemExit("--output_dir and --token_list are required")
    if args.collect_stats:
        collect_text_shapes(args)
        return
    distributed.launch(lm_worker, args)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
