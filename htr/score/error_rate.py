"""Quick CER/WER from token ids during training (ESPnet's ErrorCalculator semantics).

Validation reports `cer_ctc` (greedy CTC), `cer` and `wer` (teacher-forced argmax of the decoder).
Characters are compared with spaces removed; words split on spaces. Final scores come from
htr.score.sclite; these are for monitoring only.
"""
import editdistance


class ErrorCalculator:
    def __init__(self, token_list, sym_space="<space>", sym_blank="<blank>"):
        self.token_list = list(token_list)
        self.space = sym_space
        self.blank_id = self.token_list.index(sym_blank) if sym_blank in self.token_list else 0

    def to_text(self, ids):
        """Token ids -> text; ids < 0 (padding) and blank are dropped, <space> becomes ' '."""
        tokens = [self.token_list[i] for i in ids if 0 <= i < len(self.token_list) and i != self.blank_id]
        return "".join(tokens).replace(self.space, " ")

    @staticmethod
    def rate(pairs, split):
        errors = length = 0
        for hyp, ref in pairs:
            hyp_units, ref_units = split(hyp), split(ref)
            errors += editdistance.eval(hyp_units, ref_units)
            length += len(ref_units)
        return errors / max(length, 1)

    def cer(self, hyps, refs):
        return self.rate(zip(hyps, refs), lambda s: list(s.replace(" ", "")))

    def wer(self, hyps, refs):
        return self.rate(zip(hyps, refs), str.split)
