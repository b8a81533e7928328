"""ESPnet's SequentialRNNLM (`lm: seq_rnn`): embedding -> LSTM/GRU layers -> linear, with ESPnet's
parameter names (encoder, rnn, decoder) so its LM checkpoints load unchanged."""
from torch import nn


class SequentialRNNLM(nn.Module):
    def __init__(self, vocab_size, unit=650, nhid=None, nlayers=2, dropout_rate=0.0, tie_weights=False,
                 rnn_type="lstm", ignore_id=0):
        super().__init__()
        nhid = unit if nhid is None else nhid
        rnn_classes = {"LSTM": nn.LSTM, "GRU": nn.GRU}
        if rnn_type.upper() not in rnn_classes:
            raise ValueError(f"rnn_type {rnn_type!r}: expected lstm or gru")
        self.drop = nn.Dropout(dropout_rate)
        self.encoder = nn.Embedding(vocab_size, unit, padding_idx=ignore_id)
        self.rnn = rnn_classes[rnn_type.upper()](unit, nhid, nlayers, dropout=dropout_rate if nlayers > 1 else 0.0,
                                                 batch_first=True)
        self.decoder = nn.Linear(nhid, vocab_size)
        if tie_weights:
            if nhid != unit:
                raise ValueError("tie_weights needs nhid == unit")
            self.decoder.weight = self.encoder.weight

    def forward(self, tokens, hidden=None):
        """tokens (B, L) -> logits (B, L, V), the recurrent state after the last position."""
        output, hidden = self.rnn(self.drop(self.encoder(tokens)), hidden)
        return self.decoder(self.drop(output)), hidden
