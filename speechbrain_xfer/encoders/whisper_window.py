"""Whisper's encoder over the batch's own length instead of its 30 s window (``whisper_window: batch``).

Whisper was trained on zero-padded 30 s windows; on 1 s clips that is 30x the computation. Attention then
no longer sees the padding, so fine-tune rather than probe its final layer (``benchmarks/whisper_window.py``).
"""

import math

import torch
import torch.nn.functional as F


def encode_in_batch_window(encoder, wrapper, wavs):
    """Whisper's encoder over the batch's own length (``whisper_window="batch"``).

    transformers' ``WhisperEncoder.forward`` refuses any input but the 30 s window, so its steps are taken
    here one by one, with the positional table cut to the input. ``encoder`` is the model's
    ``WhisperEncoder``; ``wrapper`` SpeechBrain's ``Whisper``, which computes the log-mels.
    """
    stride = 2 * wrapper._hop_length  # samples per encoder frame: one mel hop, then conv2's stride 2
    frames = min(max(1, math.ceil(wavs.shape[-1] / stride)), encoder.embed_positions.num_embeddings)
    wavs = wavs[..., : frames * stride]
    # Two frames of silence past the input give its last frames the right context they have in the 30 s
    # window (zeros), for the STFT and both convolutions alike; they are cut after the convolutions. The
    # log-mel's dynamic-range floor (batch maximum - 8) is the same too, as silence never raises the maximum.
    mel = wrapper.log_mel_spectrogram(F.pad(wavs, (0, (frames + 2) * stride - wavs.shape[-1])))
    hidden = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel))))[..., :frames].permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[:frames]
    hidden = F.dropout(hidden, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers:
        if encoder.training and encoder.layerdrop > 0 and torch.rand([]) < encoder.layerdrop:
            continue  # layer drop, as transformers does it
        hidden = layer(hidden, None)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden  # a tuple under transformers 4.x
    return encoder.layer_norm(hidden)


def trim_to_input(states, wavs, hop_length):
    """Cuts encoder states back to the frames that cover the (longest) input: two encoder frames per mel
    frame (Whisper's second convolution has stride 2), one mel frame per ``hop_length`` samples."""
    frames = math.ceil(wavs.shape[-1] / (2 * hop_length))
    return states[:, : max(1, min(frames, states.shape[1]))]
