"""A trained model plus a search: feature matrices (or images) in, n-best lists out.

    rec = Recognizer.from_pretrained("model.zip", beam_size=20, ctc_weight=0.5)
    nbest_lists = rec([feats1, feats2])     # batched; each: [{"text", "tokens", "token_int", "score", "scores"}]
"""
import logging

import numpy as np
import torch

import htr
from htr.data.image_features import load_features
from htr.decode.beam_search import BeamSearch
from htr.decode import ctc_alignment
from htr.text.tokenizer import build_tokenizer


class Recognizer:
    def __init__(self, model, config, beam_size=20, ctc_weight=0.5, lm=None, lm_weight=1.0, penalty=0.0, nbest=1,
                 maxlenratio=0.0, minlenratio=0.0, greedy_ctc=False, device="cpu", ngram=None, ngram_weight=0.9):
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.tokenizer = build_tokenizer(config.get("token_type", "char"), model.token_list, config.get("bpemodel"))
        self.greedy_ctc = greedy_ctc
        if model.decoder is None:  # a CTC model: CTC prefix beam search (with any LMs)
            ctc_weight = 1.0
        elif model.ctc_weight == 0.0:  # an attention-only model (img2seq): its CTC head was never trained
            ctc_weight = 0.0
        self.search = BeamSearch(model, beam_size, ctc_weight, lm, lm_weight, penalty, nbest, maxlenratio,
                                 minlenratio, ngram=ngram, ngram_weight=ngram_weight)
        self.min_frames = model.encoder.min_length()

    @classmethod
    def from_pretrained(cls, path, device="cpu", **search_options):
        model, config = htr.load_model(path, device=device)
        return cls(model, config, device=device, **search_options)

    def image_features(self, path):
        """ESPnet's IAM features for an image file, at the model's input height."""
        return load_features(path, height=self.config["input_size"])

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
        ctc_logp = self.model.ctc.log_softmax(enc) if self.greedy_ctc or positions else None
        if self.greedy_ctc:
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
