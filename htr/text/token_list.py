"""Token lists in ESPnet's order.

char: <blank>, <unk>, characters by descending frequency in the training text (ties in order of
first occurrence), the space written <space>, <sos/eos> last.
bpe: <blank>, <unk>, the sentencepiece vocabulary in its own order without its <unk>/<s>/</s>,
<sos/eos> last (ESPnet's asr.sh reads the .vocab file the same way).
"""
from collections import Counter
from pathlib import Path

from htr.text.tokenizer import BLANK, SOS_EOS, UNK, CharSplitter


def char_token_list(lines):
    counter = Counter()
    splitter = CharSplitter()
    for line in lines:
        counter.update(splitter.text2tokens(line))
    by_count = sorted(counter.items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
    return [BLANK, UNK] + [t for t, _ in by_count if t not in (BLANK, UNK, SOS_EOS)] + [SOS_EOS]


def train_bpe(lines, model_prefix, nbpe, model_type="unigram", character_coverage=1.0):
    """Train a sentencepiece model on `lines`; return the path of the .model file."""
    import sentencepiece as spm

    model_prefix = Path(model_prefix)
    model_prefix.parent.mkdir(parents=True, exist_ok=True)
    train_txt = model_prefix.parent / "train.txt"
    train_txt.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(train_txt), model_prefix=str(model_prefix), vocab_size=nbpe, model_type=model_type,
        character_coverage=character_coverage, input_sentence_size=100_000_000,
        unk_id=0, bos_id=1, eos_id=2, minloglevel=2,
    )
    return model_prefix.with_suffix(".model")


def bpe_token_list(bpemodel):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(bpemodel))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    specials = {sp.id_to_piece(i) for i in (sp.unk_id(), sp.bos_id(), sp.eos_id()) if i >= 0}
    return [BLANK, UNK] + [p for p in pieces if p not in specials] + [SOS_EOS]


def write_token_list(tokens, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
