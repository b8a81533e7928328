"""Model structure: the seed config's exact parameters and names; batch == single with padding."""
from pathlib import Path

import pytest
import torch
import yaml

from htr.nets.subsampling import TooShortError
from htr.registry import build_model, initialize

REPO = Path(__file__).resolve().parent.parent
TOKENS = ["<blank>", "<unk>"] + [chr(0x21 + i) for i in range(79)] + ["<sos/eos>"]  # V = 82


def seed_config():
    config = yaml.safe_load((REPO / "conf/tuning/train_conformer_seed.yaml").read_text())
    config["token_list"] = TOKENS
    config["normalize_conf"] = {}
    return config


def test_seed_config_parameters_and_names():
    model = build_model(seed_config())
    assert sum(p.numel() for p in model.parameters()) == 30_770_340
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {
        "normalize.mean": (100,), "normalize.std": (100,),
        "encoder.embed.conv.0.weight": (256, 1, 3, 3), "encoder.embed.conv.2.weight": (256, 256, 3, 3),
        "encoder.embed.out.0.weight": (256, 256 * 24),
        "encoder.encoders.11.self_attn.linear_pos.weight": (256, 256),
        "encoder.encoders.0.self_attn.pos_bias_u": (4, 64), "encoder.encoders.0.self_attn.pos_bias_v": (4, 64),
        "encoder.encoders.0.feed_forward_macaron.w_1.weight": (1024, 256),
        "encoder.encoders.0.conv_module.pointwise_conv1.weight": (512, 256, 1),
        "encoder.encoders.0.conv_module.depthwise_conv.weight": (256, 1, 31),
        "encoder.encoders.0.conv_module.norm.running_var": (256,),
        "encoder.encoders.0.conv_module.pointwise_conv2.weight": (256, 256, 1),
        "encoder.encoders.0.norm_final.weight": (256,), "encoder.after_norm.weight": (256,),
        "decoder.embed.0.weight": (82, 256), "decoder.decoders.5.src_attn.linear_v.weight": (256, 256),
        "decoder.decoders.5.norm3.bias": (256,), "decoder.output_layer.weight": (82, 256),
        "ctc.ctc_lo.weight": (82, 256),
    }
    for name, shape in expected.items():
        assert shapes.get(name) == shape, name
    assert "encoder.encoders.0.self_attn.linear_pos.bias" not in shapes
    for i in range(12):
        for norm in ("norm_ff_macaron", "norm_mha", "norm_conv", "norm_ff", "norm_final"):
            assert f"encoder.encoders.{i}.{norm}.weight" in shapes
    assert not any(k.startswith("encoder.encoders.12.") or k.startswith("decoder.decoders.6.") for k in shapes)


def tiny_config(**encoder_conf):
    conf = dict(output_size=32, attention_heads=4, linear_units=48, num_blocks=2, macaron_style=True,
                cnn_module_kernel=7, input_layer="conv2d")
    conf.update(encoder_conf)
    encoder = conf.pop("encoder", "conformer")
    if encoder == "transformer":  # keys only the conformer takes: the transformer refuses them
        conf = {k: v for k, v in conf.items() if k not in ("macaron_style", "cnn_module_kernel")}
    return {"input_size": 20, "token_list": TOKENS[:12] + ["<sos/eos>"], "normalize": "utterance_mvn",
            "encoder": encoder, "encoder_conf": conf, "decoder": "transformer",
            "decoder_conf": dict(attention_heads=4, linear_units=48, num_blocks=2),
            "model_conf": dict(ctc_weight=0.3, lsm_weight=0.1)}


@pytest.mark.parametrize("encoder_conf", [
    {}, {"input_layer": "conv2d6"}, {"input_layer": "conv2d8"}, {"input_layer": "conv2d2"},
    {"input_layer": "linear", "macaron_style": False},
    {"pos_enc_layer_type": "abs_pos", "selfattention_layer_type": "selfattn", "use_cnn_module": False},
    {"encoder": "transformer", "input_layer": "conv2d"},
])
def test_batch_equals_single_with_heavy_padding(encoder_conf):
    torch.manual_seed(0)
    model = initialize(build_model(tiny_config(**encoder_conf))).eval()
    # BatchNorm running stats away from identity, so the conv module is exercised for real
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    lengths = [200, 17, 95, 31, 64, 26]
    feats = [torch.randn(n, 20) * 10 + 100 for n in lengths]
    texts = [torch.randint(2, 12, (k,)) for k in (9, 1, 6, 3, 4, 2)]
    pad_x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True, padding_value=123.0)
    pad_y = torch.nn.utils.rnn.pad_sequence(texts, batch_first=True, padding_value=-1)
    x_lens, y_lens = torch.tensor(lengths), torch.tensor([len(t) for t in texts])
    with torch.no_grad():
        enc, enc_lens = model.encode(pad_x, x_lens)
        loss, stats = model(pad_x, x_lens, pad_y, y_lens)
        single = []
        for i, (x, y) in enumerate(zip(feats, texts)):
            e, el = model.encode(x[None], x_lens[i:i + 1])
            assert int(el) == int(enc_lens[i])
            torch.testing.assert_close(enc[i, : int(el)], e[0], rtol=1e-5, atol=1e-5)
            single.append(model(x[None], x_lens[i:i + 1], y[None], y_lens[i:i + 1])[1])
    for key in ("loss", "loss_ctc", "loss_att"):
        mean_single = sum(float(s[key]) for s in single) / len(single)
        assert float(stats[key]) == pytest.approx(mean_single, rel=1e-5), key


def test_too_short_input_is_a_clear_error():
    model = build_model(tiny_config()).eval()
    with pytest.raises(TooShortError, match="6 frames"):
        model.encode(torch.randn(1, 6, 20), torch.tensor([6]))
    model.encode(torch.randn(1, 7, 20), torch.tensor([7]))


def test_unsupported_option_is_refused():
    with pytest.raises(ValueError, match="rel_pos_type"):
        build_model(tiny_config(rel_pos_type="legacy"))


def test_training_step_reduces_loss():
    torch.manual_seed(0)
    model = initialize(build_model(tiny_config()))
    x, xl = torch.randn(4, 60, 20), torch.tensor([60, 50, 40, 30])
    y, yl = torch.randint(2, 12, (4, 5)), torch.tensor([5, 4, 3, 5])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = None
    for _ in range(30):
        loss, _ = model(x, xl, y, yl)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
