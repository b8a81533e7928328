"""A trained model plus a search: images or feature matrices in, n-best lists out.

    rec = Recognizer.from_pretrained("model.zip")                 # the pack's front end, decode config, LMs
    rec = Recognizer.from_pretrained("model.zip", beam_size=4, ngram_weight=0)   # any setting overridden
    nbest_lists = rec([rec.image_features("line.png")])   # batched; each: [{"text", "tokens", "token_int", "score", "scores"}]
"""
import hashlib
import logging

import numpy as np
import torch
from PIL import Image

import htr
from htr.data.augment import Augmenter
from htr.data.frontend import ImageFrontend
from htr.decode.beam_search import BeamSearch
from htr.decode import ctc_alignment
from htr.decode.search_options import SearchOptions
from htr.lm import load_lm
from htr.model_loading import packed_files
from htr.ngram import NgramScorer, load_ngram
from htr.quantize import check as check_quantize, quantize as quantize_model
from htr.errors import UserError
from htr.text.tokenizer import build_tokenizer


# Test-time views: mild, label-preserving geometry from the training augmenter (rotation, shear,
# width scale), nothing that blurs or erases strokes.
TTA_AUGMENTATION = {"prob": 1.0, "affine": {"p": 1.0, "rotation": 1.0, "shear": 0.2, "scale": [0.95, 1.1]},
                    "grid": {"p": 0.0}, "morphology": {"p": 0.0}, "color": {"p": 0.0}, "noise": {"p": 0.0},
                    "blur": {"p": 0.0}}


def primary(x):
    """The first model's features of an input: a matrix, or an ensemble's {front end: matrix}."""
    return next(iter(x.values())) if isinstance(x, dict) else x


def frames_of(x):
    return len(primary(x))


def content_name(x):
    """A name for an unnamed input, from its features: the same line always gets the same views."""
    x = primary(x)
    return "line-" + hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:12]


class Member:
    """One scorer source of the search: a model, its front end, and which view of a line it reads
    (view 0: the line itself; view v > 0: a seeded augmentation of it)."""

    def __init__(self, model, config, view=0):
        self.model, self.config, self.view = model, config, view
        self.frontend = ImageFrontend.of_model(config)
        self.min_frames = model.encoder.min_length()


class Recognizer:
    def __init__(self, model, config, options=None, lm=None, ngram=None, device="cpu", ensemble=(),
                 ensemble_weights=None, **settings):
        """`ensemble`: further (model, config) pairs decoded together with this one (they must share
        its token list), weighted by `ensemble_weights` (default equal); options.tta > 1 adds views."""
        self.model = model.to(device).eval()
        self.config = config
        self.device = torch.device(device)
        self.options = (options or SearchOptions()).updated(settings)
        self.tokenizer = build_tokenizer(config.get("token_type", "char"), model.token_list, config.get("bpemodel"))
        self.members, weights = self.build_members([(model, config), *ensemble], ensemble_weights)
        self.frontend = self.members[0].frontend
        if self.options.greedy_ctc and len(self.members) > 1:
            raise UserError("greedy_ctc decodes one model: not with --tta or an ensemble")
        self.search = BeamSearch(model, self.options, lm=lm, ngram=ngram,
                                 ensemble=[(m.model, w) for m, w in zip(self.members, weights)])
        self.augmenter = Augmenter(TTA_AUGMENTATION, self.options.tta_seed)
        self.sources = {}  # where the model, decode config and LMs came from (from_pretrained)

    def build_members(self, models, weights):
        for other, _ in models[1:]:
            if list(other.token_list) != list(self.model.token_list):
                raise UserError("an ensemble's models must share one token list")
        weights = list(weights) if weights else [1.0] * len(models)
        if len(weights) != len(models) or min(weights) < 0 or sum(weights) <= 0:
            raise UserError(f"ensemble weights {weights}: need {len(models)} non-negative weights, not all 0")
        views = max(1, self.options.tta)
        members = [Member(m.to(self.device).eval(), c, v) for m, c in models for v in range(views)]
        return members, [w / views for w in weights for _ in range(views)]

    @classmethod
    def from_pretrained(cls, path, device="cpu", train_config=None, lm_train_config=None, lm_file=None,
                        ngram_file=None, ngram_backend="auto", ensemble=(), ensemble_weights=None, quantize=None,
                        **settings):
        """A model with what its pack carries: decode config (the settings its recipe decoded
        with) and LMs. `settings` (SearchOptions fields; None = not set) and explicit LM files
        override; a packed LM whose weight is 0 is not loaded. `ensemble`: paths of further models
        decoded together with this one. `quantize` "int8": every model's linear layers in int8 (CPU)."""
        check_quantize(quantize, device)
        if train_config:
            model, config = htr.load_model(train_config, model_file=path, device=device)
            packed = {}
        else:
            model, config = htr.load_model(path, device=device)
            packed = packed_files(path)
        options = SearchOptions.read(packed["decode_config"]) if "decode_config" in packed else SearchOptions()
        options = options.updated(settings)
        if lm_train_config and not lm_file:
            raise UserError(f"--lm_train_config {lm_train_config} needs --lm_file (the LM's weights)")
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
        others = [htr.load_model(other, device=device) for other in ensemble]
        model = quantize_model(model, quantize, device)
        others = [(quantize_model(m, quantize, device), c) for m, c in others]
        rec = cls(model, config, options, lm=lm, ngram=ngram, device=device, ensemble=others,
                  ensemble_weights=ensemble_weights)
        rec.sources = {"model": str(path), "decode_config": str(packed["decode_config"]) if "decode_config" in packed
                       else None, "lm": str(lm_file) if lm else None, "ngram": str(ngram_file) if ngram else None}
        if ensemble:
            rec.sources["ensemble"] = [str(path), *map(str, ensemble)]
        if quantize not in (None, "none"):
            rec.sources["quantize"] = quantize
        return rec

    def describe(self):
        """What this recogniser decodes with: settings, LMs, front end."""
        return {**self.sources, "frontend": self.frontend.to_conf(), "search": self.options.to_dict()}

    def frontends(self):
        return list(dict.fromkeys(m.frontend for m in self.members))

    def image_features(self, source):
        """An image file (or a grayscale PIL image) -> the model's input, by the model's own front
        end; for an ensemble whose models have other front ends, {front end: features} for each."""
        def of(frontend):
            return frontend.features(source) if isinstance(source, Image.Image) else frontend.load(source)

        frontends = self.frontends()
        if len(frontends) == 1:
            return of(frontends[0])
        return {frontend: of(frontend) for frontend in frontends}

    def member_inputs(self, member, inputs, names):
        """The features `member` reads for each input: its front end's, in its view."""
        out = []
        for x, name in zip(inputs, names):
            if isinstance(x, dict):
                x = x[member.frontend]
            elif member.frontend != self.frontend:
                raise UserError(f"{name}: features of one front end for an ensemble with several: decode images")
            out.append(self.augmenter(np.asarray(x, dtype=np.float32), name, member.view) if member.view else x)
        return out

    def result(self, hyp):
        """ESPnet's output fields: yseq without its first and last entry, blanks removed."""
        ids = hyp.token_ids()
        tokens = self.tokenizer.ids2tokens(ids)
        return {"text": self.tokenizer.tokens2text(tokens), "tokens": tokens, "token_int": ids,
                "score": hyp.score, "scores": dict(hyp.scores)}

    @torch.no_grad()
    def encode(self, feats_list, model=None):
        x = torch.nn.utils.rnn.pad_sequence([torch.tensor(np.asarray(f), dtype=torch.float32) for f in feats_list],
                                            batch_first=True).to(self.device)
        lengths = torch.tensor([len(f) for f in feats_list], device=self.device)
        return (model or self.model).encode(x, lengths)

    @torch.no_grad()
    def __call__(self, feats_list, names=None, positions=False):
        """Feature matrices (T, F) (or image_features' dicts) -> per input its n-best result list
        ([] when too short to decode). With `positions`, the best result also gets "positions": per
        token (first feature frame, last feature frame, confidence) from the CTC forced alignment."""
        names = names or [content_name(x) for x in feats_list]  # TTA views must not depend on batch position
        results = [[] for _ in feats_list]
        per_member = [self.member_inputs(m, feats_list, names) for m in self.members]
        usable = []
        for i, name in enumerate(names):
            short = [(len(x[i]), m.min_frames) for m, x in zip(self.members, per_member) if len(x[i]) < m.min_frames]
            if short:
                logging.warning("%s: %d frames, shorter than the %d the model needs: empty hypothesis", name, *short[0])
            else:
                usable.append(i)
        if not usable:
            return results
        encoded = [self.encode([x[i] for i in usable], m.model) for m, x in zip(self.members, per_member)]
        enc, enc_lens = encoded[0]
        ctc_logp = self.model.ctc.log_softmax(enc) if self.options.greedy_ctc or positions else None
        if self.options.greedy_ctc:
            hyps = [[h] for h in ctc_alignment.greedy(ctc_logp, enc_lens, self.model.eos)]
        else:
            hyps = self.search([e for e, _ in encoded], [n for _, n in encoded])
        for row, (i, nbest) in enumerate(zip(usable, hyps)):
            results[i] = [self.result(h) for h in nbest]
            if positions and nbest:
                logp = ctc_logp[row, : int(enc_lens[row])].float().cpu()
                results[i][0]["positions"] = self.positions(logp, results[i][0]["token_int"], len(per_member[0][i]))
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
