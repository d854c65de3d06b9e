"""The CTC output layer: per-frame token log-probabilities."""

import torch
from torch import nn


class CTCHead(nn.Module):
    """Dropout, a linear projection to the tokens, and log-softmax, frame by frame.

    Arguments
    ---------
    input_dim : int
        Size of the encoder's frames.
    n_tokens : int
        Output size: every token, the CTC blank included (``len(tokenizer)``).
    dropout : float
        Dropout before the projection.

    Example
    -------
    >>> head = CTCHead(input_dim=16, n_tokens=30)
    >>> log_probs = head(torch.randn(2, 50, 16))
    >>> log_probs.shape, bool(torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 50)))
    (torch.Size([2, 50, 30]), True)
    """

    def __init__(self, input_dim, n_tokens, dropout=0.1):
        super().__init__()
        self.n_tokens = n_tokens
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(input_dim, n_tokens)

    def forward(self, x):
        return torch.log_softmax(self.linear(self.dropout(x)), dim=-1)
