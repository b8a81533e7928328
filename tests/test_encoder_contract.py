"""The encoder contract: every registered encoder has output_size(), min_length() and stride(), and
forward returns (xs, lengths, aux) with its auxiliary outputs in the dict aux (nothing stashed on
the module); output lengths follow from min_length/stride; htr/nets imports form no circle."""
import ast
from pathlib import Path

import pytest
import torch

from htr.nets.layers import TooShortError
from htr.registry import ENCODERS, build_model, initialize

NETS = Path(__file__).resolve().parent.parent / "htr" / "nets"
HEIGHT = 32
SMALL = {"conformer": dict(output_size=16, attention_heads=2, linear_units=16, num_blocks=1, cnn_module_kernel=3),
         "transformer": dict(output_size=16, attention_heads=2, linear_units=16, num_blocks=1),
         "crnn": dict(channels=(8, 8, 8, 8), blocks=(1, 1, 1), proj_units=16, rnn_units=8, rnn_layers=1),
         "flor": dict(channels=(4, 4, 4, 4, 4, 4), rnn_units=8, rnn_layers=1),
         "crnn_lite": dict(channels=(4, 4, 4, 4, 4), rnn_units=8, rnn_layers=1),
         "resnet": dict(output_size=16, channels=(8, 8, 8, 8), blocks=(1, 1, 1))}
CASES = [(name, {}) for name in ENCODERS] + [
    ("conformer", {"input_layer": layer}) for layer in ("conv2d2", "conv2d6", "conv2d8", "linear", "cnn")]


def make(name, **conf):
    return ENCODERS[name](HEIGHT, **dict(SMALL[name], **conf)).eval()


def test_every_registered_encoder_is_covered():
    assert set(SMALL) == set(ENCODERS)


@pytest.mark.parametrize("name, conf", CASES, ids=lambda c: str(c))
def test_contract_methods_and_lengths(name, conf):
    torch.manual_seed(0)
    encoder = make(name, **conf)
    first, stride = encoder.min_length(), encoder.stride()
    assert isinstance(first, int) and first >= 1 and isinstance(stride, int) and stride >= 1
    widths = [first, first + 1, first + stride, 3 * stride + first + 2, 61]
    xs = torch.randn(len(widths), max(widths), HEIGHT)
    with torch.no_grad():
        out = encoder(xs, torch.tensor(widths))
    assert isinstance(out, tuple) and len(out) == 3
    ys, lengths, aux = out
    assert isinstance(aux, dict)
    assert ys.shape[0] == len(widths) and ys.shape[2] == encoder.output_size()
    assert lengths.tolist() == [(n - first) // stride + 1 for n in widths]
    assert ys.shape[1] == max(lengths.tolist())
    if first > 1:
        with pytest.raises(TooShortError):
            encoder(torch.randn(1, first - 1, HEIGHT), torch.tensor([first - 1]))


@pytest.mark.parametrize("name", ["crnn", "flor", "crnn_lite", "resnet"])
def test_cnn_encoders_return_the_shortcut_features(name):
    encoder = make(name)
    ys, lengths, aux = encoder(torch.randn(2, 40, HEIGHT), torch.tensor([40, 25]))
    assert aux["shortcut"].shape[:2] == ys.shape[:2]
    assert aux["shortcut"].shape[2] == encoder.shortcut_size()
    assert not hasattr(encoder, "shortcut")  # returned, not stashed on the module


def test_shortcut_head_trains_through_aux():
    torch.manual_seed(0)
    tokens = ["<blank>", "<unk>"] + list("abcd") + ["<sos/eos>"]
    model = initialize(build_model({"input_size": HEIGHT, "token_list": tokens, "encoder": "crnn",
                                    "encoder_conf": SMALL["crnn"], "decoder": "none",
                                    "model_conf": {"ctc_weight": 1.0, "shortcut_ctc_weight": 0.5}})).train()
    x, xl = torch.randn(2, 48, HEIGHT), torch.tensor([48, 36])
    y, yl = torch.randint(2, 6, (2, 4)), torch.tensor([4, 3])
    loss, stats = model(x, xl, y, yl)
    loss.backward()
    assert model.shortcut_ctc.ctc_lo.weight.grad.abs().sum() > 0
    assert loss.item() == pytest.approx(float(stats["loss_ctc"]) + 0.5 * float(stats["loss_shortcut"]), rel=1e-5)
    enc, enc_lens = model.encode(x, xl)  # decoding's view: exactly (enc, enc_lens)
    assert enc.shape[:2] == model.encode_with_aux(x, xl)[2]["shortcut"].shape[:2]


def nets_imports(path):
    """(module-level htr.nets imports, imports inside functions or classes) of a file."""
    tree = ast.parse(path.read_text())
    top = {n.module.rsplit(".", 1)[1] for n in tree.body
           if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("htr.nets.")}
    nested = [n for body in tree.body if not isinstance(body, (ast.Import, ast.ImportFrom))
              for n in ast.walk(body) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return top, nested


def test_nets_imports_are_acyclic_and_at_module_level():
    graph = {}
    for path in sorted(NETS.glob("*.py")):
        graph[path.stem], nested = nets_imports(path)
        assert not nested, f"{path.name}: import inside a function or class"
    done, active = set(), []

    def visit(module):
        assert module not in active, f"import circle: {' -> '.join(active + [module])}"
        if module not in done:
            active.append(module)
            for dep in graph.get(module, ()):
                visit(dep)
            active.pop()
            done.add(module)

    for module in graph:
        visit(module)
