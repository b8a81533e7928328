"""A trained model plus a search: images or feature matrices in, n-best lists out.

    rec = Recognizer.from_pretrained("model.zip")                 # the pack's front end, decode config, LMs
    rec = Recognizer.from_pretrained("model.zip", beam_size=4, ngram_weight=0)   # any setting overridden
    nbest_lists = rec([rec.image_features("line.png")])   # batched; each: [{"text", "tokens", "token_int", "score", "scores"}]
"""
import logging

import numpy as np
import torch

import htr
from htr.data.frontend import ImageFrontend
from htr.decode.beam_search import BeamSearch
from htr.decode import ctc_alignment
from htr.decode.search_options import SearchOptions
from htr.lm import load_lm
from htr.model_loading import packed_files
from htr.ngram import NgramScorer, load_ngram
from htr.errors import UserError
from htr.text.tokenizer import build_tokenizer


class Recognizer:
    def __init__(self, model, config, options=None, lm=None, ngram=None, device="cpu", **settings):
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.options = (options or SearchOptions()).updated(settings)
        self.frontend = ImageFrontend.of_model(config)
        self.tokenizer = build_tokenizer(config.get("token_type", "char"), model.token_list, config.get("bpemodel"))
        self.search = BeamSearch(model, self.options, lm=lm, ngram=ngram)
        self.min_frames = model.encoder.min_length()
        self.sources = {}  # where the model, decode config and LMs came from (from_pretrained)

    @classmethod
    def from_pretrained(cls, path, device="cpu", train_config=None, lm_train_config=None, lm_file=None,
                        ngram_file=None, ngram_backend="auto", **settings):
        """A model with what its pack carries: decode config (the settings its recipe decoded
        with) and LMs. `settings` (SearchOptions fields; None = not set) and explicit LM files
        override; a packed LM whose weight is 0 is not loaded."""
        if train_config:
            model, config = htr.load_model(train_config, model_file=path, device=device)
            packed = {}
        else:
            model, config = htr.load_model(path, device=device)
            packed = packed_files(path)
        options = SearchOptions.read(packed["decode_config"]) if "decode_config" in packed else SearchOptions()
        options = options.updated(settings)
        lm_train_config, lm_file = (lm_train_config, lm_file) if lm_file else \
            (packed.get("lm_train_config"), packed.get("lm_file"))
        ngram_file = ngram_file or packed.get("ngram_file")
        lm = ngram = None
        if lm_file and options.lm_weight != 0.0:
            if not lm_train_config:
                raise UserError(f"{lm_file}: a neural LM needs its lm_train config (--lm_train_config)")
            lm = load_lm(lm_train_config, lm_file, device)[0]
            if lm.token_list != list(model.token_list):
                raise UserError(f"{lm_train_config}: the LM's token list differs from the model's")
        if ngram_file and options.ngram_weight != 0.0:
            ngram = NgramScorer(load_ngram(ngram_file, ngram_backend), model.token_list, model.eos)
        rec = cls(model, config, options, lm=lm, ngram=ngram, device=device)
        rec.sources = {"model": str(path), "decode_config": str(packed["decode_config"]) if "decode_config" in packed
                       else None, "lm": str(lm_file) if lm else None, "ngram": str(ngram_file) if ngram else None}
        return rec

    def describe(self):
        """What this recogniser decodes with: settings, LMs, front end."""
        return {**self.sources, "frontend": self.frontend.to_conf(), "search": self.options.to_dict()}

    def image_features(self, path):
        """An image file -> the model's input, by the model's own front end."""
        return self.frontend.load(path)

    def result(self, hyp):
        """ESPnet's output fields: yseq without its first and last entry, blanks removed."""
        ids = hyp.token_ids()
        tokens = self.tokenizer.ids2tokens(ids)
        return {"text": self.tokenizer.tokens2text(tokens), "tokens": tokens, "token_int": ids,
                "score": hyp.score, "scores": dict(hyp.scores)}

    @torch.no_grad()
    def encode(self, feats_list):
        x = torch.nn.utils.rnn.pad_sequence([torch.tensor(np.asarray(f), dtype=torch.float32) for f in feats_list],
                                            batch_first=True).to(self.device)
        lengths = torch.tensor([len(f) for f in feats_list], device=self.device)
        return self.model.encode(x, lengths)

    @torch.no_grad()
    def __call__(self, feats_list, names=None, positions=False):
        """Feature matrices (T, F) -> per input its n-best result list ([] when too short to decode).
        With `positions`, the best result also gets "positions": per token (first feature frame,
        last feature frame, confidence) from the CTC forced alignment."""
        names = names or [str(i) for i in range(len(feats_list))]
        results = [[] for _ in feats_list]
        usable = [i for i, f in enumerate(feats_list) if len(f) >= self.min_frames]
        for i in sorted(set(range(len(feats_list))) - set(usable)):
            logging.warning("%s: %d frames, shorter than the %d the model needs: empty hypothesis",
                            names[i], len(feats_list[i]), self.min_frames)
        if not usable:
            return results
        enc, enc_lens = self.encode([feats_list[i] for i in usable])
        ctc_logp = self.model.ctc.log_softmax(enc) if self.options.greedy_ctc or positions else None
        if self.options.greedy_ctc:
            hyps = [[h] for h in ctc_alignment.greedy(ctc_logp, enc_lens, self.model.eos)]
        else:
            hyps = self.search(enc, enc_lens)
        for row, (i, nbest) in enumerate(zip(usable, hyps)):
            results[i] = [self.result(h) for h in nbest]
            if positions and nbest:
                logp = ctc_logp[row, : int(enc_lens[row])].float().cpu()
                results[i][0]["positions"] = self.positions(logp, results[i][0]["token_int"], len(feats_list[i]))
        return results

    def positions(self, logp, token_int, n_frames):
        """Where each output token sits: [(first_feature_frame, last_feature_frame, confidence)]."""
        spans = ctc_alignment.align(logp, [t for t in token_int if t != self.model.eos])
        encoder = self.model.encoder
        out = []
        for first, last, conf in spans:
            start, end = ctc_alignment.input_span(encoder, first, last)
            out.append((start, min(end, n_frames - 1), conf))
        return out
