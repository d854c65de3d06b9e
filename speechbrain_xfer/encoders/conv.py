"""A small convolutional (+ recurrent) encoder on filterbanks, trainable on CPUs.

It is the project's own encoder for SynthSpeech: pretrained in minutes on
two cores, and exposing its layers bottom to top like the hub encoders do.
"""

import torch
from torch import nn

from speechbrain_xfer.lobes.pooling import length_mask


class ConvBlock(nn.Module):
    """Conv1d over time, batch norm, ReLU, dropout; (batch, time, dim) in and out."""

    def __init__(self, in_dim, out_dim, kernel_size=5, stride=1, dropout=0.1):
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = torch.relu(self.norm(self.conv(x.transpose(1, 2))))
        return self.dropout(x).transpose(1, 2)


class ConvEncoder(nn.Module):
    """Conv blocks, then an optional bidirectional GRU.

    Arguments
    ---------
    input_dim : int
        Filterbank channels.
    channels : sequence of int
        Output channels of each conv block.
    strides : sequence of int
        Time stride of each conv block (their product subsamples the frames).
    rnn_dim : int
        Hidden size per direction of a BiGRU on top; 0 for none.
    dropout : float
        Dropout after each block.

    Example
    -------
    >>> enc = ConvEncoder(40, channels=(32, 32), strides=(1, 2), rnn_dim=16)
    >>> enc(torch.randn(2, 100, 40)).shape, enc.output_dim, len(enc.layers())
    (torch.Size([2, 50, 32]), 32, 3)
    """

    def __init__(self, input_dim=40, channels=(64, 64, 128), strides=(1, 2, 1), rnn_dim=0, dropout=0.1):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError(f"channels {channels} and strides {strides} must have the same length")
        dims = (input_dim, *channels)
        self.blocks = nn.ModuleList(
            ConvBlock(dims[i], dims[i + 1], stride=strides[i], dropout=dropout) for i in range(len(channels))
        )
        self.rnn = nn.GRU(channels[-1], rnn_dim, batch_first=True, bidirectional=True) if rnn_dim else None
        self.output_dim = 2 * rnn_dim if rnn_dim else channels[-1]

    def layers(self):
        """The encoder's layers, bottom to top, for freezing and learning-rate schedules."""
        return [*self.blocks, *([self.rnn] if self.rnn is not None else [])]

    def forward(self, feats, lengths=None):
        x = feats
        for block in self.blocks:
            x = block(x)
        if self.rnn is not None:
            mask = length_mask(lengths, x.shape[1])
            if mask is not None:
                # Padding frames must not leak into the backward direction.
                x = x * mask.unsqueeze(-1)
            x, _ = self.rnn(x)
        return x
