"""The seed architectures as registry choices (CRNN + CTC shortcut, Flor gated CNN, lite CRNN with
a spatial transformer, ResNet img2seq, the conformer with a CNN front end), from the configs the
embedded recipe ships: shapes for odd widths and heights, loss falls, one epoch of ocr_train and
decoding through ocr_inference."""
import pytest
import torch
import yaml

from conftest import REPO, run_tool
from htr.registry import build_model, initialize

TUNING = REPO / "egs2" / "handfonts" / "ocr1" / "conf" / "tuning"
ARCHS = ["crnn", "flor", "crnn_lite", "img2seq", "conformer_cnn"]
TOKENS = ["<blank>", "<unk>"] + list("abcdefghij ") + ["<sos/eos>"]


def config(arch, input_size):
    conf = yaml.safe_load((TUNING / f"train_ocr_{arch}.yaml").read_text())
    conf.update(input_size=input_size, token_list=TOKENS, normalize=None)
    return conf


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("height", [32, 37])
def test_shapes_for_odd_widths_and_heights(arch, height):
    torch.manual_seed(0)
    model = initialize(build_model(config(arch, height))).eval()
    lengths = torch.tensor([123, 77, 31])
    enc, enc_lens = model.encode(torch.randn(3, 123, height), lengths)
    stride = model.encoder.stride()
    assert enc.shape[0] == 3 and enc.shape[2] == model.encoder.output_size()
    assert enc_lens.tolist() == [int(n) for n in enc_lens] and int(enc_lens[0]) == enc.shape[1]
    for n, m in zip(lengths.tolist(), enc_lens.tolist()):
        assert abs(m - n / stride) <= 2  # each utterance's own subsampled length
    assert model.encoder.min_length() >= 1


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_falls(arch):
    torch.manual_seed(0)
    model = initialize(build_model(config(arch, 32))).train()
    x, xl = torch.randn(4, 121, 32), torch.tensor([121, 99, 77, 61])
    y, yl = torch.randint(2, 12, (4, 9)), torch.tensor([9, 7, 5, 4])
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    losses = []
    for _ in range(12):
        loss, stats = model(x, xl, y, yl)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert losses[-1] < 0.7 * losses[0], losses
    if arch == "crnn":
        assert "loss_shortcut" in stats  # the CTC shortcut head trains too


def test_spatial_transformer_starts_as_the_identity():
    model = initialize(build_model(config("crnn_lite", 32))).eval()
    image = torch.rand(2, 1, 32, 80)
    assert torch.allclose(model.encoder.stn(image), image, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_train_one_epoch_and_decode(arch, train_data, tmp_path):
    conf = yaml.safe_load((TUNING / f"train_ocr_{arch}.yaml").read_text())
    conf.update(max_epoch=1, batch_size=8, num_workers=0, keep_nbest_models=1, log_interval=None)
    (tmp_path / "conf.yaml").write_text(yaml.safe_dump(conf))
    args = train_data.train_args(tmp_path / "exp")
    args[args.index("--config") + 1] = tmp_path / "conf.yaml"
    run_tool("ocr_train", *args)
    feats = train_data.root / "dump" / "valid" / "feats.scp"
    run_tool("ocr_inference", "--model_file", tmp_path / "exp", "--output_dir", tmp_path / "dec",
             "--data_path_and_name_and_type", f"{feats},speech,kaldi_ark", "--beam_size", 2, "--batch_size", 4)
    hyps = (tmp_path / "dec" / "1best_recog" / "text").read_text().splitlines()
    assert len(hyps) == len(feats.read_text().splitlines())
