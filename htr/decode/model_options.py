"""The command-line options that pick a model and how it decodes, shared by `htr recognize` and
`htr serve`: --model (repeated: an ensemble), --ensemble_weights, --device, --quantize, the LM
files and every search option (default: what the model's pack says); and the Recognizer they
describe."""
from htr.decode import search_options
from htr.decode.recognizer import Recognizer
from htr.model_loading import DEFAULT_MODEL
from htr.quantize import CHOICES as QUANTIZE_CHOICES


def add_arguments(p):
    p.add_argument("--model", action="append", default=None,
                   help="model zip, pack dir, experiment dir, URL, hub name or bundled model name; repeat it "
                        f"for an ensemble (default: the bundled {DEFAULT_MODEL})")
    p.add_argument("--ensemble_weights", type=float, nargs="+", default=None,
                   help="one weight per --model (default: equal)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none",
                   help="int8: linear layers in int8 for faster CPU decoding (see the README)")
    p.add_argument("--lm_train_config", default=None, help="neural LM config (default: the pack's)")
    p.add_argument("--lm_file", default=None, help="neural LM weights (default: the pack's)")
    p.add_argument("--ngram_file", default=None, help="n-gram ARPA file (default: the pack's)")
    search_options.add_arguments(p)


def recognizer(args):
    """The Recognizer of parsed add_arguments options."""
    settings = {n: getattr(args, n) for n in search_options.names()}
    args.model = args.model or [DEFAULT_MODEL]
    return Recognizer.from_pretrained(args.model[0], device=args.device, lm_train_config=args.lm_train_config,
                                      lm_file=args.lm_file, ngram_file=args.ngram_file, ensemble=args.model[1:],
                                      ensemble_weights=args.ensemble_weights, quantize=args.quantize, **settings)
