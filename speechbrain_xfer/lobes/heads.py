"""Classifier heads over pooled encoder outputs."""

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """Pooling, then an optional hidden layer, then log-probabilities.

    Arguments
    ---------
    pooling : nn.Module
        Maps (batch, time, dim) and relative lengths to (batch, pooled_dim);
        must have an ``output_dim`` attribute.
    n_classes : int
        Number of classes.
    hidden : int
        Size of the hidden layer; 0 for a linear classifier.
    dropout : float
        Dropout before each linear layer.

    Example
    -------
    >>> import torch
    >>> from speechbrain_xfer.lobes.pooling import MeanPooling
    >>> head = ClassifierHead(MeanPooling(16), n_classes=5)
    >>> logp = head(torch.randn(2, 30, 16), torch.tensor([1.0, 0.6]))
    >>> logp.shape, bool(torch.allclose(logp.exp().sum(-1), torch.ones(2)))
    (torch.Size([2, 5]), True)
    """

    def __init__(self, pooling, n_classes, hidden=0, dropout=0.1):
        super().__init__()
        self.pooling = pooling
        self.n_classes = n_classes
        layers = [nn.Dropout(dropout)]
        size = pooling.output_dim
        if hidden:
            layers += [nn.Linear(size, hidden), nn.LeakyReLU(), nn.Dropout(dropout)]
            size = hidden
        layers += [nn.Linear(size, n_classes), nn.LogSoftmax(dim=-1)]
        self.classifier = nn.Sequential(*layers)

    def pool(self, x, lengths=None):
        """One vector per utterance (what batch-spectral regularizers see)."""
        return self.pooling(x, lengths)

    def classify(self, pooled):
        """Log-probabilities from pooled vectors."""
        return self.classifier(pooled)

    def forward(self, x, lengths=None):
        return self.classify(self.pool(x, lengths))


class ClassifierHeads(nn.Module):
    """One :class:`ClassifierHead` per target, called in one forward.

    Multi-process training wraps each trainable module in DDP, which
    synchronizes gradients only through the wrapper's ``forward``: the heads
    must be one module with a forward, not a dict indexed by the Brain.

    Arguments
    ---------
    heads : dict or nn.ModuleDict
        ``{target: ClassifierHead}``; the same head objects are kept (a
        checkpoint of the ModuleDict and of this module hold the same keys).

    Example
    -------
    >>> import torch
    >>> from speechbrain_xfer.lobes.pooling import MeanPooling
    >>> heads = ClassifierHeads({"action": ClassifierHead(MeanPooling(8), 3),
    ...                          "object": ClassifierHead(MeanPooling(8), 4)})
    >>> log_probs, pooled = heads(torch.randn(2, 10, 8), torch.tensor([1.0, 0.5]))
    >>> {k: tuple(v.shape) for k, v in log_probs.items()}, tuple(pooled.shape)
    ({'action': (2, 3), 'object': (2, 4)}, (2, 16))
    """

    def __init__(self, heads):
        super().__init__()
        self.heads = heads if isinstance(heads, nn.ModuleDict) else nn.ModuleDict(heads)

    def forward(self, features, lengths=None):
        """Returns ``({target: log_probs}, pooled)``, pooled being every head's vector side by side."""
        log_probs, pooled = {}, []
        for target, head in self.heads.items():
            vector = head.pool(features, lengths)
            pooled.append(vector)
            log_probs[target] = head.classify(vector)
        return log_probs, torch.cat(pooled, dim=-1)
