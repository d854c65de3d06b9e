"""Classifier heads over pooled encoder outputs."""

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
