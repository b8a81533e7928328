"""One image's recognition result as JSON: what `htr recognize --json` prints and `htr serve`
answers, so both give the same fields.

    {"image", "width", "height", "nbest": [{"text", "score", "scores"}],
     "characters": [{"char", "x": [from, to], "confidence"}], "words": [{"text", "x", "confidence"}],
     "decoding"}

x positions are pixels of the original image (feature frames are columns of the resized image);
a character's confidence is its mean CTC posterior, a word's the mean of its characters'.
"""
from htr.decode.recognizer import primary
from htr.text.tokenizer import SPECIAL_TOKENS


def clean(result):
    """The text without ESPnet's special tokens (a forced <sos/eos> at the maximum length)."""
    return "".join(t for t in result["tokens"] if t not in SPECIAL_TOKENS).replace("<space>", " ")


def result_json(name, size, feats, nbest, decoding):
    """`size`: the original image's (width, height); `feats`: the features it was decoded from."""
    width, height = size
    scale = width / len(primary(feats))  # an ensemble of front ends: positions are the first model's
    out = {"image": name, "width": width, "height": height,
           "nbest": [{"text": clean(r), "score": r["score"], "scores": r["scores"]} for r in nbest]}
    if nbest:
        tokens = [t for t in nbest[0]["tokens"] if t not in SPECIAL_TOKENS]
        out["characters"] = [{"char": " " if tok == "<space>" else tok, "x": [round(a * scale), round((b + 1) * scale)],
                              "confidence": round(conf, 4)} for tok, (a, b, conf) in zip(tokens, nbest[0]["positions"])]
        out["words"] = words(out["characters"])
    out["decoding"] = decoding
    return out


def word_runs(characters):
    """The characters of each word: the runs between spaces."""
    runs, run = [], []
    for c in characters + [{"char": " "}]:
        if c["char"].strip():
            run.append(c)
        elif run:
            runs.append(run)
            run = []
    return runs


def words(characters):
    """Runs of non-space characters -> [{"text", "x": [first char's from, last char's to], "confidence"}]."""
    return [{"text": "".join(r["char"] for r in run), "x": [run[0]["x"][0], run[-1]["x"][1]],
             "confidence": round(sum(r["confidence"] for r in run) / len(run), 4)} for run in word_runs(characters)]
