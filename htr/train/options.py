"""ocr_train's options: ESPnet's names, a YAML --config, and command-line overrides.

The YAML file sets defaults; anything on the command line wins. Dict options
(`--optim_conf`, `--encoder_conf`, ...) merge: `--optim_conf lr=0.001` or `--optim_conf '{lr: 0.001}'`
changes only `lr`. Unknown keys in the YAML file are an error naming the file, so a typo never
trains a different model silently.
"""
import argparse

import configargparse

from htr.utils.options import (Append, MergeDict, config_defaults, data_triple, none_or, str2bool,
                                 str_or_none)


MODEL_DICT_OPTIONS = ("encoder_conf", "decoder_conf", "ctc_conf", "model_conf",
                "normalize_conf", "frontend_conf", "specaug_conf")


def get_parser(task="ocr"):
    """ocr_train's options, or lm_train's (task="lm": the same training options, an LM model group)."""
    what = "a recogniser (ESPnet's asr_train options)" if task == "ocr" else "a language model (ESPnet's lm_train options)"
    p = configargparse.ArgumentParser(description=f"Train {what}.",
                                      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", is_config_file=False, help="YAML file of defaults (ESPnet keys)")
    p.add_argument("--print_config", type=str2bool, default=False, help="print the resolved config and exit")
    p.add_argument("--log_level", default="INFO")
    p.add_argument("--output_dir", type=str_or_none, default=None)

    g = p.add_argument_group("distributed")
    g.add_argument("--ngpu", type=int, default=0, help="GPUs (processes) on this node; >1 starts DDP")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--num_workers", type=int, default=1, help="data loader worker processes")
    g.add_argument("--dist_backend", default="nccl", choices=["nccl", "gloo"])
    g.add_argument("--dist_launcher", type=str_or_none, default=None, choices=[None, "slurm"],
                   help="slurm: one process per task, ranks from Slurm's environment")
    g.add_argument("--dist_init_method", default="env://")
    g.add_argument("--dist_timeout", type=float, default=1800.0,
                   help="seconds a rank waits for the others before giving up")

    g = p.add_argument_group("trainer")
    g.add_argument("--collect_stats", type=str2bool, default=False)
    g.add_argument("--max_epoch", type=int, default=40)
    g.add_argument("--patience", type=none_or(int), default=None)
    g.add_argument("--early_stopping_criterion", nargs=3, default=["valid", "loss", "min"],
                   metavar=("PHASE", "KEY", "MIN_OR_MAX"))
    g.add_argument("--best_model_criterion", nargs=3, action=Append, metavar=("PHASE", "KEY", "MIN_OR_MAX"),
                   default=[["train", "loss", "min"], ["valid", "loss", "min"],
                            ["train", "acc", "max"], ["valid", "acc", "max"]])
    g.add_argument("--keep_nbest_models", type=int, default=10)
    g.add_argument("--grad_clip", type=float, default=5.0)
    g.add_argument("--grad_clip_type", type=float, default=2.0)
    g.add_argument("--accum_grad", type=int, default=1)
    g.add_argument("--resume", type=str2bool, default=False,
                   help="continue from <output_dir>/checkpoint.pth (mid-epoch ones at the next batch)")
    g.add_argument("--save_every_steps", type=none_or(int), default=None,
                   help="also write a resumable checkpoint every N updates within an epoch")
    g.add_argument("--save_every_minutes", type=none_or(float), default=10.0,
                   help="also write a resumable checkpoint every M minutes within an epoch (none: off)")
    g.add_argument("--num_iters_per_epoch", type=none_or(int), default=None,
                   help="an epoch is N batches cut from consecutive shuffled passes (ESPnet's option)")
    g.add_argument("--worker_timeout", type=float, default=600.0,
                   help="seconds a data-loader worker may take for a batch before it counts as hung and "
                        "is replaced (its utterance skipped)")
    g.add_argument("--use_amp", type=str2bool, default=False)
    g.add_argument("--amp_dtype", default="float16", choices=["float16", "bfloat16"])
    g.add_argument("--compile", type=str2bool, default=False,
                   help="torch.compile the training step (compiles on the first batches; validation runs eager)")
    g.add_argument("--compile_backend", default="inductor",
                   help="torch.compile backend (inductor: fused kernels, for GPUs; aot_eager: graph capture only)")
    g.add_argument("--log_interval", type=none_or(int), default=None,
                   help="iterations between log lines (default: about 20 per epoch)")
    g.add_argument("--use_tensorboard", type=str2bool, default=True)
    g.add_argument("--use_matplotlib", type=str2bool, default=True, help="PNG plots in <output_dir>/images")
    g.add_argument("--num_att_plot", type=int, default=3)
    g.add_argument("--init_param", action=Append, default=[],
                   help="path[:src_prefix[:dst_prefix[:exclude,...]]] (repeatable)")
    g.add_argument("--max_input_length", type=none_or(int), default=None,
                   help="drop training/valid images longer than this many frames")
    g.add_argument("--max_text_length", type=none_or(int), default=None,
                   help="drop training/valid lines with more tokens than this")

    g = p.add_argument_group("data")
    g.add_argument("--train_data_path_and_name_and_type", type=data_triple, action=Append, default=[])
    g.add_argument("--valid_data_path_and_name_and_type", type=data_triple, action=Append, default=[])
    g.add_argument("--train_shape_file", action=Append, default=[])
    g.add_argument("--valid_shape_file", action=Append, default=[])
    g.add_argument("--batch_type", default="folded", choices=["folded", "numel", "length", "unsorted"])
    g.add_argument("--valid_batch_type", type=str_or_none, default=None)
    g.add_argument("--batch_size", type=int, default=20)
    g.add_argument("--valid_batch_size", type=none_or(int), default=None)
    g.add_argument("--batch_bins", type=int, default=1000000)
    g.add_argument("--valid_batch_bins", type=none_or(int), default=None)
    g.add_argument("--min_batch_size", type=int, default=1)
    g.add_argument("--fold_length", type=int, action=Append, default=[])
    g.add_argument("--token_list", type=str_or_none, default=None)
    g.add_argument("--token_type", default="char", choices=["char", "word", "bpe"])
    g.add_argument("--bpemodel", type=str_or_none, default=None)
    g.add_argument("--augmentation_conf", action=MergeDict, default={},
                   help="on-the-fly augmentation of training lines (htr/data/augment.py); empty: off")
    g.add_argument("--synthetic_augmentation_proba", type=float, default=0.0,
                   help="chance that a training line is replaced by one made of word spans of other lines "
                        "(htr/data/span_synthesis.py; needs word_segments beside the training feats.scp)")

    g = p.add_argument_group("optimization")
    g.add_argument("--optim", default="adam", choices=["adam", "adamw", "sgd"])
    g.add_argument("--optim_conf", action=MergeDict, default={})
    g.add_argument("--scheduler", type=str_or_none, default=None,
                   choices=[None, "warmuplr", "noam", "cosine"])
    g.add_argument("--scheduler_conf", action=MergeDict, default={})

    if task == "lm":
        g = p.add_argument_group("language model (ESPnet config keys)")
        g.add_argument("--init", type=str_or_none, default=None)
        g.add_argument("--lm", default="seq_rnn", choices=["seq_rnn"])
        g.add_argument("--lm_conf", action=MergeDict, default={})
        g.add_argument("--model_conf", action=MergeDict, default={})
        return p
    g = p.add_argument_group("model (ESPnet config keys)")
    g.add_argument("--input_size", type=none_or(int), default=None, help="feature dim (default: from the data)")
    g.add_argument("--init", type=str_or_none, default="xavier_uniform")
    g.add_argument("--model", default="espnet")
    for name, default in (("frontend", None), ("specaug", None), ("normalize", "global_mvn"),
                          ("encoder", "conformer"), ("decoder", "transformer")):
        g.add_argument(f"--{name}", type=str_or_none, default=default)
    for name in MODEL_DICT_OPTIONS:
        g.add_argument(f"--{name}", action=MergeDict, default={})
    return p


def parse_args(argv=None, task="ocr"):
    """Parse with the YAML file of --config as defaults."""
    parser = get_parser(task)
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        parser.set_defaults(**config_defaults(parser, pre.config))
    args = parser.parse_args(argv)
    for key in list(vars(args)):
        if key.startswith("_cli_"):
            delattr(args, key)
    for crit in args.best_model_criterion + [args.early_stopping_criterion]:
        if len(crit) != 3 or crit[2] not in ("min", "max"):
            parser.error(f"a criterion is 'phase key min|max', got {crit}")
    return args
