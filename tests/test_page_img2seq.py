"""Whole-page img2seq (egs2/handfonts/page1): page_text_data turns synthetic pages into a data dir
with '␤' for line breaks, page_text_score counts page CER as page_eval does, the 2-D resnet
encoder (`flatten: 2d`) keeps each utterance's cells first in row-major order, and the recipe's
model trains on a page."""
import pytest
import torch
import yaml

from conftest import REPO, run_tool
from htr.bin.page_text_data import NEWLINE, to_transcript
from htr.bin.page_text_score import page_scores
from htr.data.datadir import read_kv, read_text, validate_data_dir
from htr.data.image_features import load_features
from htr.errors import ConfigError
from htr.nets.image_encoders import resnet
from htr.nets.layers import TooShortError
from htr.page import pagexml
from htr.page.corpus import page_files
from htr.registry import build_model, initialize
from htr.text.tokenizer import build_tokenizer

FONTS = REPO / "egs2" / "handfonts" / "ocr1" / "local" / "fonts"
RECIPE = REPO / "egs2" / "handfonts" / "page1"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("pages") / "pages"
    run_tool("synth_pages", out, "--num", 2, "--fonts_dir", FONTS, "--font_list", FONTS / "train.list",
             "--text", REPO / "egs2" / "handfonts" / "ocr1" / "local" / "text" / "moby_dick.txt.gz")
    return out


@pytest.fixture(scope="module")
def data(pages):
    out = pages.parent / "data"
    run_tool("page_text_data", pages, out)
    return out


def test_one_utterance_per_page_with_newline_tokens(pages, data):
    assert validate_data_dir(data) == []
    text, images = read_text(data / "text"), read_kv(data / "img.scp")
    files = page_files(pages)
    assert sorted(text) == [image.stem for image, _, _ in files] and read_kv(data / "utt2spk") == {u: u for u in text}
    for image, xml, _ in files:
        page = pagexml.read(xml)
        assert text[image.stem].count(NEWLINE) == len(page.lines()) - 1 > 0
        assert "\n" not in text[image.stem] and to_transcript(text[image.stem]) == page.text()
        assert images[image.stem] == str(image.resolve())


def test_bad_pages_dir_is_a_one_line_error(tmp_path):
    proc = run_tool("page_text_data", tmp_path, tmp_path / "data", check=False)
    assert proc.returncode == 1 and "no page images" in proc.stderr and "Traceback" not in proc.stderr


def test_page_score_counts_newlines_as_characters(pages, data, tmp_path):
    refs = {"a": "one\ntwo", "b": "three"}
    s = page_scores(refs, {"a": "one two", "b": "three\n"})
    assert (s["edits"], s["chars"], s["right_line_count"]) == (2, 12, 0)
    hyp = tmp_path / "hyp"
    hyp.write_text((data / "text").read_text())  # the references themselves: no error
    proc = run_tool("page_text_score", pages, hyp, "--results", tmp_path / "page_cer.md")
    assert "| 0.00 (0 / " in proc.stdout and "| 2 / 2 |" in proc.stdout
    assert (tmp_path / "page_cer.md").read_text() == proc.stdout
    hyp.write_text("\n".join((data / "text").read_text().splitlines()[1:]))
    proc = run_tool("page_text_score", pages, hyp, check=False)
    assert proc.returncode == 1 and "1 of 2 pages have no hypothesis" in proc.stderr


def small_2d(**conf):
    return resnet(64, **dict(dict(output_size=16, channels=(4, 8, 8, 8), blocks=(1, 1, 1), time_pool=(2, 2, 2),
                                  flatten="2d", stem_stride=2), **conf))


def test_2d_encoder_flattens_each_utterances_cells_row_major():
    torch.manual_seed(0)
    encoder = small_2d().eval()
    rows, first, stride = encoder.rows, encoder.min_length(), encoder.stride()
    assert (rows, first, stride) == (4, 15, 16)  # 64 rows / 16; the column stride
    widths = torch.tensor([70, first, 41])
    xs = torch.randn(3, 70, 64)
    with torch.no_grad():
        ys, lengths, aux = encoder(xs, widths)
        cols = encoder.out_widths(widths)
        assert lengths.tolist() == (rows * cols).tolist() == encoder.out_lengths(widths).tolist()
        assert ys.shape == (3, int(lengths.max()), 16) and aux == {}
        masked = xs * (torch.arange(70)[None, :, None] < widths[:, None, None])
        cells = encoder.proj(encoder.cnn(masked.transpose(1, 2).unsqueeze(1)).permute(0, 2, 3, 1))  # (B, rows, W', d)
        positions = ys[0, :rows * int(cols[0])] - cells[0].reshape(-1, 16)  # the 2-D encoding alone
        for i, w in enumerate(cols.tolist()):  # each utterance: its own columns of every row, rows in order
            expected = cells[i, :, :w].reshape(rows * w, 16) + positions.view(rows, -1, 16)[:, :w].reshape(-1, 16)
            assert torch.allclose(ys[i, :rows * w], expected, atol=1e-6)
    assert not torch.allclose(positions.view(rows, -1, 16)[0], positions.view(rows, -1, 16)[1])  # rows differ
    with pytest.raises(TooShortError):
        encoder(torch.randn(1, first - 1, 64), torch.tensor([first - 1]))
    with pytest.raises(ConfigError, match="flatten"):
        small_2d(flatten="3d")


def test_recipe_model_trains_on_a_page(pages, data):
    """conf/train_ocr.yaml as shipped (without its feature statistics) on one real page."""
    torch.manual_seed(0)
    conf = yaml.safe_load((RECIPE / "conf" / "train_ocr.yaml").read_text())
    text = read_text(data / "text")
    utt = min(text, key=lambda u: len(text[u]))  # the shorter page: a quicker step
    tokens = ["<blank>", "<unk>", "<space>", *sorted(set(text[utt]) - {" "}), "<sos/eos>"]
    model = initialize(build_model(dict(
        {k: conf[k] for k in ("encoder", "encoder_conf", "decoder", "decoder_conf", "model_conf")},
        input_size=512, token_list=tokens, normalize="utterance_mvn"))).train()
    x = torch.from_numpy(load_features(read_kv(data / "img.scp")[utt], height=512, width_factor=1.0))[None]
    y = torch.tensor([build_tokenizer("char", tokens).encode(text[utt])])
    assert model.encoder.rows == 32 and x.shape[1] > 300  # 512 rows in, the page's aspect kept
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        loss = model(x, torch.tensor([x.shape[1]]), y, torch.tensor([y.shape[1]]))[0]
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert all(map(torch.isfinite, torch.tensor(losses))) and losses[-1] < losses[0]
