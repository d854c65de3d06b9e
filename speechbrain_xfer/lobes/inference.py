"""Whole models for inference, waveform in: what an exported folder's ``hyperparams.yaml`` builds.

SpeechBrain's stock inference classes call their modules with waveforms and
relative lengths (``EncoderClassifier``: ``embedding_model(feats, wav_lens)``
then ``classifier(embedding)``; ``EncoderASR``: ``encoder(wavs, wav_lens)``).
These modules run the same front end as training (:func:`encode_waveforms`,
which the Brains use too), so an exported model gives the trained Brain's
outputs.
"""

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from speechbrain_xfer.lobes.features import frame_lengths


def encode_waveforms(encoder, wavs, lens, compute_features=None, mean_var_norm=None):
    """Waveforms to encoder outputs: features, normalization, encoder.

    Relative lengths are not kept by a strided encoder or an STFT, so pooling
    or the CTC loss would count a padding frame or drop a real one; the
    lengths here are exact to the frame where the front end and the encoder
    say how they subsample (``frame_lengths``, ``output_lengths``).

    Arguments
    ---------
    encoder : torch.nn.Module
        Called as ``encoder(x, lens)``; may be wrapped in DDP.
    wavs : torch.Tensor
        (batch, samples) waveforms.
    lens : torch.Tensor
        Relative lengths of the waveforms.
    compute_features : torch.nn.Module, optional
        Filterbanks or similar; None for encoders that take waveforms.
    mean_var_norm : torch.nn.Module, optional
        Called as ``mean_var_norm(features, lens)``.

    Returns
    -------
    features : torch.Tensor
        The encoder's outputs.
    x : torch.Tensor
        The encoder's input.
    lens : torch.Tensor
        Relative lengths of ``x``.
    output_lens : torch.Tensor
        Relative lengths of ``features``.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain_xfer.encoders.conv import ConvEncoder
    >>> encoder = ConvEncoder(40, channels=(8,), strides=(2,)).eval()
    >>> features, x, lens, out = encode_waveforms(encoder, torch.randn(2, 16000), torch.tensor([1.0, 0.5]), Fbank())
    >>> tuple(x.shape), tuple(features.shape), [round(v, 3) for v in out.tolist()]
    ((2, 101, 40), (2, 51, 8), [1.0, 0.51])
    """
    x = wavs
    if compute_features is not None:
        x = compute_features(wavs)
        lens = frame_lengths(compute_features, lens, wavs.shape[1], x.shape[1])
        if mean_var_norm is not None:
            x = mean_var_norm(x, lens)
    features = encoder(x, lens)
    module = encoder.module if isinstance(encoder, DistributedDataParallel) else encoder
    output_lens = module.output_lengths(lens, x.shape[1]) if hasattr(module, "output_lengths") else lens
    return features, x, lens, output_lens


class WaveformEncoder(nn.Module):
    """Front end and encoder as one module: ``(wavs, lens) -> (features, output_lens)``.

    Arguments
    ---------
    encoder : torch.nn.Module
        The (pretrained, fine-tuned) encoder.
    compute_features : torch.nn.Module, optional
        Filterbanks or similar; None for encoders that take waveforms.
    mean_var_norm : torch.nn.Module, optional
        Feature normalization, called with the features' lengths.
    """

    def __init__(self, encoder, compute_features=None, mean_var_norm=None):
        super().__init__()
        self.encoder = encoder
        self.compute_features = compute_features
        self.mean_var_norm = mean_var_norm

    def forward(self, wavs, wav_lens=None):
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
        features, _, _, output_lens = encode_waveforms(
            self.encoder, wavs, wav_lens, self.compute_features, self.mean_var_norm
        )
        return features, output_lens


class UtteranceEmbedder(WaveformEncoder):
    """Front end, encoder and a classifier head's pooling: one vector per utterance.

    ``EncoderClassifier``'s ``embedding_model``; its ``classifier`` is a
    :class:`PooledClassifier` on the same head.

    Arguments
    ---------
    encoder : torch.nn.Module
        The encoder.
    head : speechbrain_xfer.lobes.ClassifierHead
        Its ``pool`` makes the vector.
    compute_features, mean_var_norm : torch.nn.Module, optional
        As for :class:`WaveformEncoder`.

    Example
    -------
    >>> from speechbrain_xfer.encoders.conv import ConvEncoder
    >>> from speechbrain_xfer.lobes import ClassifierHead, MeanPooling
    >>> head = ClassifierHead(MeanPooling(8), n_classes=3)
    >>> embedder = UtteranceEmbedder(ConvEncoder(1, channels=(8,), strides=(1,)), head).eval()
    >>> embedding = embedder(torch.randn(2, 50, 1))
    >>> tuple(embedding.shape), tuple(PooledClassifier(head)(embedding).shape)
    ((2, 8), (2, 3))
    """

    def __init__(self, encoder, head, compute_features=None, mean_var_norm=None):
        super().__init__(encoder, compute_features, mean_var_norm)
        self.head = head

    def forward(self, wavs, wav_lens=None):
        features, output_lens = super().forward(wavs, wav_lens)
        return self.head.pool(features, output_lens)


class PooledClassifier(nn.Module):
    """A classifier head's layers after pooling: pooled vectors to log-probabilities."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, pooled):
        return self.head.classify(pooled)


class CTCModel(WaveformEncoder):
    """Front end, encoder and CTC head: ``(wavs, lens) -> per-frame token log-probabilities``.

    ``EncoderASR``'s ``encoder``.

    Example
    -------
    >>> from speechbrain_xfer.encoders.conv import ConvEncoder
    >>> from speechbrain_xfer.lobes import CTCHead
    >>> model = CTCModel(ConvEncoder(1, channels=(8,), strides=(1,)), CTCHead(8, 5)).eval()
    >>> tuple(model(torch.randn(2, 50, 1), torch.tensor([1.0, 0.8])).shape)
    (2, 50, 5)
    """

    def __init__(self, encoder, ctc_head, compute_features=None, mean_var_norm=None):
        super().__init__(encoder, compute_features, mean_var_norm)
        self.ctc_head = ctc_head

    def forward(self, wavs, wav_lens=None):
        features, _ = super().forward(wavs, wav_lens)
        return self.ctc_head(features)


class PassThrough(nn.Module):
    """Returns its first argument: a stage that a stock inference class calls but the model does elsewhere.

    ``EncoderClassifier`` calls ``compute_features(wavs)`` and
    ``mean_var_norm(feats, wav_lens)`` before its ``embedding_model``; an
    :class:`UtteranceEmbedder` computes its features itself, with lengths
    exact to the frame, so those two stages pass the waveforms through.

    Example
    -------
    >>> PassThrough()(torch.ones(2), torch.zeros(2)).tolist()
    [1.0, 1.0]
    """

    def forward(self, x, *args, **kwargs):
        return x
