"""Error rates with sclite's semantics, without sclite.

sclite aligns with costs correct 0, substitution 4, insertion 3, deletion 3, and on a tie prefers
the diagonal (correct/substitution), then insertion, then deletion when tracing back from the end.
Its default comparison folds ASCII case only ('A' == 'a', 'É' != 'é'); ESPnet calls sclite without
`-s`, so its published scores are ASCII-case-insensitive. `case_sensitive=True` is sclite's `-s`.
"""
from dataclasses import dataclass, field

SUB_COST, INS_COST, DEL_COST = 4, 3, 3
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_case(token):
    return token.translate(_ASCII_LOWER)


def align(ref, hyp, case_sensitive=False):
    """Align two token lists; return a list of (op, ref_token, hyp_token), op in C, S, D, I."""
    r = ref if case_sensitive else [fold_case(t) for t in ref]
    h = hyp if case_sensitive else [fold_case(t) for t in hyp]
    n, m = len(r), len(h)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * DEL_COST
    for j in range(1, m + 1):
        cost[0][j] = j * INS_COST
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        ri = r[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (0 if ri == h[j - 1] else SUB_COST)
            row[j] = min(diag, prev[j] + DEL_COST, row[j - 1] + INS_COST)
    ops = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            same = r[i - 1] == h[j - 1]
            if cost[i][j] == cost[i - 1][j - 1] + (0 if same else SUB_COST):
                ops.append(("C" if same else "S", ref[i - 1], hyp[j - 1]))
                i, j = i - 1, j - 1
                continue
        if j > 0 and cost[i][j] == cost[i][j - 1] + INS_COST:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
        else:
            ops.append(("D", ref[i - 1], None))
            i -= 1
    ops.reverse()
    return ops


@dataclass
class Counts:
    snt: int = 0
    wrd: int = 0
    corr: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0
    serr: int = 0

    @property
    def err(self):
        return self.sub + self.dele + self.ins

    def add(self, other):
        for name in ("snt", "wrd", "corr", "sub", "dele", "ins", "serr"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def percentages(self):
        """sclite's Sum/Avg row: Corr/Sub/Del/Ins/Err as % of Wrd, S.Err as % of Snt."""
        def pct(x, total):
            return 100.0 * x / total if total else 0.0
        return {"corr": pct(self.corr, self.wrd), "sub": pct(self.sub, self.wrd),
                "del": pct(self.dele, self.wrd), "ins": pct(self.ins, self.wrd),
                "err": pct(self.err, self.wrd), "serr": pct(self.serr, self.snt)}

    @property
    def error_rate(self):
        return self.percentages()["err"]


def counts_of(ops):
    c = Counts(snt=1)
    for op, ref_tok, _ in ops:
        c.wrd += ref_tok is not None
        c.corr += op == "C"
        c.sub += op == "S"
        c.dele += op == "D"
        c.ins += op == "I"
    c.serr = int(c.err > 0)
    return c


@dataclass
class ScoreResult:
    total: Counts = field(default_factory=Counts)
    utterances: list = field(default_factory=list)  # (utt-id, ops, Counts)


def score(refs, hyps, case_sensitive=False):
    """Score dicts utt-id -> token list. Every reference must have a hypothesis (a missing one is an
    error, as in sclite); hypotheses without a reference are ignored."""
    missing = [u for u in refs if u not in hyps]
    if missing:
        raise KeyError(f"{len(missing)} reference utterances have no hypothesis (first: {missing[0]})")
    result = ScoreResult()
    for utt in refs:
        ops = align(refs[utt], hyps[utt], case_sensitive)
        c = counts_of(ops)
        result.total.add(c)
        result.utterances.append((utt, ops, c))
    return result


def format_alignment(utt, ops, counts):
    """One utterance in sclite's `pralign` style."""
    ref_cells, hyp_cells, eval_cells = [], [], []
    for op, r, h in ops:
        r_cell = r if op == "C" else ("*" * max(len(h), 1) if r is None else r.upper())
        h_cell = h if op == "C" else ("*" * max(len(r), 1) if h is None else h.upper())
        width = max(len(r_cell), len(h_cell))
        ref_cells.append(r_cell.ljust(width))
        hyp_cells.append(h_cell.ljust(width))
        eval_cells.append(("" if op == "C" else op).ljust(width))
    return (f"id: ({utt})\n"
            f"Scores: (#C #S #D #I) {counts.corr} {counts.sub} {counts.dele} {counts.ins}\n"
            f"REF:  {' '.join(ref_cells)}\n"
            f"HYP:  {' '.join(hyp_cells)}\n"
            f"Eval: {' '.join(eval_cells)}\n")


TABLE_HEADER = "| dataset | Snt | Wrd | Corr | Sub | Del | Ins | Err | S.Err |\n|---|---|---|---|---|---|---|---|---|\n"


def table_row(dataset, counts):
    p = counts.percentages()
    return (f"| {dataset} | {counts.snt} | {counts.wrd} | {p['corr']:.1f} | {p['sub']:.1f} | {p['del']:.1f} "
            f"| {p['ins']:.1f} | {p['err']:.1f} | {p['serr']:.1f} |\n")
