"""A small convolutional (+ recurrent) encoder on filterbanks, trainable on CPUs.

It is the project's own encoder for SynthSpeech: pretrained in minutes on
two cores, and exposing its layers bottom to top like the hub encoders do.

Padding never reaches a valid frame: the input and every block's output are
zeroed past each utterance's length (which follows the stride subsampling),
and the GRU sees each utterance within its own length only
(:func:`~speechbrain_xfer.encoders.bigru.bidirectional_gru`: packed sequences,
or the same computation with a faster backward pass in training on the CPU).
So in eval mode an utterance's valid
frames are the same whether it is encoded alone or padded in a batch, which
the frozen-encoder feature cache relies on.
"""

import torch
from torch import nn

from speechbrain_xfer.encoders.bigru import bidirectional_gru
from speechbrain_xfer.lobes.pooling import length_mask


class ConvBlock(nn.Module):
    """Conv1d over time, batch norm, ReLU, dropout; (batch, time, dim) in and out."""

    def __init__(self, in_dim, out_dim, kernel_size=5, stride=1, dropout=0.1):
        super().__init__()
        # Kept here too: an adapter may replace ``conv`` with a wrapper.
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = torch.relu(self.norm(self.conv(x.transpose(1, 2))))
        return self.dropout(x).transpose(1, 2)

    def output_frames(self, frames):
        """Output frames of an input of ``frames`` frames (the Conv1d length formula)."""
        padding = self.kernel_size // 2
        return torch.div(frames + 2 * padding - self.kernel_size, self.stride, rounding_mode="floor") + 1


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

    Padding does not change the valid frames (eval mode: batch statistics off):

    >>> enc = enc.eval()
    >>> alone = torch.randn(1, 30, 40)
    >>> padded = torch.cat([alone, torch.randn(1, 10, 40)], dim=1)  # 30 of 40 frames are valid
    >>> out = enc(padded, torch.tensor([0.75]))
    >>> torch.allclose(out[:, :15], enc(alone, torch.ones(1)), atol=1e-6), out[:, 15:].abs().max().item()
    (True, 0.0)
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
        # In every checkpoint, so that loading one into an encoder of other strides fails: the weights
        # would fit (a stride changes no shape) and the encoder would run at another frame rate.
        self.register_buffer("frame_strides", torch.tensor(strides, dtype=torch.long))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        key = prefix + "frame_strides"
        saved, own = state_dict.get(key), self.frame_strides.tolist()
        if saved is not None and saved.tolist() != own:
            error_msgs.append(
                f"the checkpoint's encoder has strides {saved.tolist()} but this one {own}: its weights would "
                f"run at another frame rate; set the encoder's strides to {saved.tolist()} or train it again"
            )
        # Checkpoints saved before the strides were have none; a mismatch is reported above: keep our own.
        state_dict[key] = self.frame_strides.clone()
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def layers(self):
        """The encoder's layers, bottom to top, for freezing and learning-rate schedules."""
        return [*self.blocks, *([self.rnn] if self.rnn is not None else [])]

    def output_lengths(self, lengths, num_frames):
        """Relative lengths of the output frames, for inputs of relative ``lengths`` over ``num_frames`` frames.

        Subsampling does not keep relative lengths: 153 of 228 frames become 77 of 114, not
        ``round(153 / 228 * 114) = 76``. Poolings given these lengths see every valid frame.

        Example
        -------
        >>> enc = ConvEncoder(40, channels=(8, 8), strides=(1, 2))
        >>> (enc.output_lengths(torch.tensor([1.0, 153 / 228]), 228) * 114).round().tolist()
        [114.0, 77.0]
        """
        frames = length_mask(lengths, num_frames).sum(dim=1)
        total = torch.tensor(num_frames)
        for block in self.blocks:
            frames, total = block.output_frames(frames), block.output_frames(total)
        return frames / total

    def forward(self, feats, lengths=None):
        """Encodes (batch, time, input_dim) features; ``lengths`` are relative, as in SpeechBrain."""
        if lengths is None:
            x = feats
            for block in self.blocks:
                x = block(x)
            return x if self.rnn is None else self.rnn(x)[0]
        frames = length_mask(lengths, feats.shape[1]).sum(dim=1)
        x = _zero_padding(feats, frames)
        for block in self.blocks:
            frames = block.output_frames(frames)
            x = _zero_padding(block(x), frames)
        return x if self.rnn is None else bidirectional_gru(self.rnn, x, frames)


def _zero_padding(x, frames):
    """``x`` with the frames past ``frames`` (per utterance) set to zero."""
    return x * (torch.arange(x.shape[1], device=x.device)[None, :] < frames[:, None]).unsqueeze(-1).to(x.dtype)
