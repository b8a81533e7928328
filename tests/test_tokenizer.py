from conftest import run_tool
from htr.data.datadir import write_data_dir
from htr.text.token_list import char_token_list
from htr.text.tokenizer import build_tokenizer, read_token_list

LINES = ["the cat sat", "a hat, a bat", "The END"]


def test_char_token_list_espnet_order():
    tokens = char_token_list(LINES)
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert tokens[2] == "<space>"  # most frequent symbol
    # 'a' (6) before 't' (5); ties keep first-seen order: 'c' before 's'
    assert tokens.index("a") < tokens.index("t") < tokens.index("c") < tokens.index("s")
    assert " " not in tokens and len(set(tokens)) == len(tokens)


def test_char_tokenizer_roundtrip_and_unknowns():
    tok = build_tokenizer("char", char_token_list(LINES))
    ids = tok.encode("a cat!")
    assert ids[-1] == tok.unk_id == 1 and tok.unk_count == 1 and tok.unk_tokens["!"] == 1
    assert tok.decode(tok.encode("the hat")) == "the hat"
    assert tok.text2tokens("a b") == ["a", "<space>", "b"]


def test_bpe_token_list_and_tokenizer(tmp_path):
    data = tmp_path / "data"
    corpus = [f"{w} {v} line {i}" for i, (w, v) in enumerate(zip(["alpha", "beta", "gamma"] * 40,
                                                                   ["one", "two", "three", "four"] * 30))]
    write_data_dir(data, {f"u{i:03d}": t for i, t in enumerate(corpus)})
    out = tmp_path / "bpe30" / "tokens.txt"
    run_tool("token_list", "--token_type", "bpe", "--nbpe", 30, "--text", data / "text", "--output", out)
    tokens = read_token_list(out)
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert len(tokens) == 30 - 3 + 3 and "<s>" not in tokens and "</s>" not in tokens
    tok = build_tokenizer("bpe", out, bpemodel=out.parent / "bpe.model")
    assert tok.decode(tok.encode("gamma two line 7")) == "gamma two line 7"
    assert tok.unk_count == 0


def test_char_token_list_cli(tmp_path):
    write_data_dir(tmp_path / "d", {f"u{i}": t for i, t in enumerate(LINES)})
    run_tool("token_list", "--text", tmp_path / "d" / "text", "--output", tmp_path / "tokens.txt")
    assert read_token_list(tmp_path / "tokens.txt") == char_token_list(LINES)
