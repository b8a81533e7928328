"""The joint CTC/attention recogniser (ESPnet's ESPnetASRModel, for images).

loss = ctc_weight · CTC + (1 - ctc_weight) · label-smoothed attention loss.
"""
import torch
from torch import nn

from htr.errors import ConfigError
from htr.nets.ctc import collapse
from htr.nets.label_smoothing import LabelSmoothingLoss
from htr.nets.layers import check_supported
from htr.score.error_rate import ErrorCalculator

IGNORE_ID = -1


def add_sos_eos(ys, lengths, sos, eos, ignore_id=IGNORE_ID):
    """ys (B, L) padded -> decoder input <sos>+y (padded with eos), target y+<eos> (padded with ignore_id)."""
    ys_in, ys_out = [], []
    for y, n in zip(ys, lengths):
        y = y[:n]
        ys_in.append(torch.cat([y.new_full((1,), sos), y]))
        ys_out.append(torch.cat([y, y.new_full((1,), eos)]))
    pad_in = nn.utils.rnn.pad_sequence(ys_in, batch_first=True, padding_value=eos)
    pad_out = nn.utils.rnn.pad_sequence(ys_out, batch_first=True, padding_value=ignore_id)
    return pad_in, pad_out


def token_accuracy(logits, target, ignore_id=IGNORE_ID):
    keep = target != ignore_id
    correct = (logits.argmax(-1) == target) & keep
    return float(correct.sum()) / max(float(keep.sum()), 1.0)


class OCRModel(nn.Module):
    # ESPnet model_conf keys htr takes at these values only (extract_feats_in_collect_stats only
    # concerns a front end inside the model, which htr has not: either value is the same model).
    ESPNET_ONLY = dict(interctc_weight=[0.0], extract_feats_in_collect_stats=[True, False],
                       sym_sos=["<sos/eos>"], sym_eos=["<sos/eos>"], lang_token_id=[-1])

    def __init__(self, vocab_size, token_list, normalize, encoder, decoder, ctc, ctc_weight=0.5,
                 lsm_weight=0.0, length_normalized_loss=False, ignore_id=IGNORE_ID, report_cer=True,
                 report_wer=True, sym_space="<space>", sym_blank="<blank>", shortcut_ctc_weight=0.0,
                 shortcut_ctc=None, **espnet):
        super().__init__()
        check_supported("model_conf", espnet, **self.ESPNET_ONLY)
        if not 0.0 <= ctc_weight <= 1.0:
            raise ConfigError(f"model_conf.ctc_weight must be in [0, 1], got {ctc_weight}")
        self.vocab_size = vocab_size
        self.token_list = list(token_list)
        self.sos = self.eos = vocab_size - 1
        self.blank_id = 0
        self.ignore_id = ignore_id
        self.ctc_weight = ctc_weight
        self.normalize = normalize
        self.encoder = encoder
        self.decoder = decoder
        self.ctc = ctc
        # Retsinas et al.'s CTC shortcut: a second CTC head on the CNN features of a CRNN-type
        # encoder, added to the loss with its own weight (training aid; decoding ignores it).
        self.shortcut_ctc_weight, self.shortcut_ctc = shortcut_ctc_weight, shortcut_ctc
        self.criterion_att = LabelSmoothingLoss(vocab_size, ignore_id, lsm_weight, length_normalized_loss)
        self.report_cer, self.report_wer = report_cer, report_wer
        self.error_calculator = ErrorCalculator(self.token_list, sym_space, sym_blank)

    def encode(self, feats, feats_lengths):
        """Normalise and encode: (B, T, F) -> (B, T', d), lengths."""
        return self.encode_with_aux(feats, feats_lengths)[:2]

    def encode_with_aux(self, feats, feats_lengths):
        """encode, plus the encoder's auxiliary outputs (a dict, e.g. "shortcut" of a CNN encoder)."""
        feats = feats[:, : int(feats_lengths.max())]
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        enc, enc_lens, aux = self.encoder(feats, feats_lengths)
        return enc, enc_lens, aux or {}

    def forward(self, feats, feats_lengths, text, text_lengths):
        """Returns (loss, stats) with stats loss, loss_ctc, loss_att, acc (ESPnet semantics); in eval
        mode also cer_ctc (greedy CTC) and cer/wer (teacher-forced decoder argmax)."""
        text = text[:, : int(text_lengths.max())]
        enc, enc_lens, aux = self.encode_with_aux(feats, feats_lengths)
        stats = {}
        loss_ctc = loss_att = None
        if self.ctc_weight > 0.0:
            loss_ctc = self.ctc(enc, enc_lens, text, text_lengths)
            stats["loss_ctc"] = loss_ctc.detach()
            if not self.training and self.report_cer:
                stats["cer_ctc"] = self.ctc_error_rate(enc, enc_lens, text, text_lengths)
        if self.ctc_weight < 1.0:
            ys_in, ys_out = add_sos_eos(text, text_lengths, self.sos, self.eos, self.ignore_id)
            logits, _ = self.decoder(enc, enc_lens, ys_in, text_lengths + 1)
            loss_att = self.criterion_att(logits, ys_out)
            stats["loss_att"] = loss_att.detach()
            stats["acc"] = token_accuracy(logits, ys_out, self.ignore_id)
            if not self.training and (self.report_cer or self.report_wer):
                stats.update(self.attention_error_rates(logits, text, text_lengths))
        if loss_att is None:
            loss = loss_ctc
        elif loss_ctc is None:
            loss = loss_att
        else:
            loss = self.ctc_weight * loss_ctc + (1 - self.ctc_weight) * loss_att
        if self.shortcut_ctc is not None:
            loss_shortcut = self.shortcut_ctc(aux["shortcut"], enc_lens, text, text_lengths)
            stats["loss_shortcut"] = loss_shortcut.detach()
            loss = loss + self.shortcut_ctc_weight * loss_shortcut
        stats["loss"] = loss.detach()
        return loss, stats

    def refs(self, text, text_lengths):
        calc = self.error_calculator
        return [calc.to_text(y[:n].tolist()) for y, n in zip(text, text_lengths)]

    def ctc_error_rate(self, enc, enc_lens, text, text_lengths):
        calc = self.error_calculator
        best = self.ctc.log_softmax(enc).argmax(-1)
        hyps = [calc.to_text(collapse(b[:n].tolist(), calc.blank_id)) for b, n in zip(best, enc_lens)]
        return calc.cer(hyps, self.refs(text, text_lengths))

    def attention_error_rates(self, logits, text, text_lengths):
        calc = self.error_calculator
        best = logits.argmax(-1)
        hyps = [calc.to_text(b[:n].tolist()) for b, n in zip(best, text_lengths)]  # drop the eos slot
        refs = self.refs(text, text_lengths)
        stats = {}
        if self.report_cer:
            stats["cer"] = calc.cer(hyps, refs)
        if self.report_wer:
            stats["wer"] = calc.wer(hyps, refs)
        return stats
