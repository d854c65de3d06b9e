"""Inference for exports that SpeechBrain's stock classes cannot serve: several classifier heads.

A three-slot intent model (action, object, location) has one head per slot;
``EncoderClassifier`` knows one. :class:`MultiTargetClassifier` is a
``speechbrain.inference`` ``Pretrained`` class for such exports, loaded with
``MultiTargetClassifier.from_hparams(source=...)`` or, as the export's model
card shows, through ``foreign_class`` and the export's ``custom_interface.py``.
"""

import torch
from speechbrain.inference.interfaces import Pretrained


class MultiTargetClassifier(Pretrained):
    """One utterance, one label per target (e.g. action, object and location of a spoken command).

    The exported ``hyperparams.yaml`` defines the modules ``wave_encoder``
    (:class:`speechbrain_xfer.lobes.WaveformEncoder`) and ``heads``
    (:class:`speechbrain_xfer.lobes.ClassifierHeads`), the list ``targets``
    and the dict ``label_encoders`` (target to ``CategoricalEncoder``).
    """

    MODULES_NEEDED = ["wave_encoder", "heads"]
    HPARAMS_NEEDED = ["targets", "label_encoders"]

    def classify_batch(self, wavs, wav_lens=None):
        """Classifies a batch of 16 kHz waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, samples) waveforms.
        wav_lens : torch.Tensor, optional
            Relative lengths; all 1.0 when omitted.

        Returns
        -------
        log_probs : dict
            ``{target: (batch, n_classes) log-probabilities}``.
        labels : list of dict
            For each utterance, ``{target: label}``.
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs, wav_lens = wavs.float().to(self.device), wav_lens.to(self.device)
        with torch.no_grad():
            features, lens = self.mods.wave_encoder(wavs, wav_lens)
            log_probs, _ = self.mods.heads(features, lens)
        labels = [{} for _ in range(wavs.shape[0])]
        for target in self.hparams.targets:
            decoded = self.hparams.label_encoders[target].decode_torch(log_probs[target].argmax(dim=-1))
            for row, label in zip(labels, decoded):
                row[target] = label
        return log_probs, labels

    def classify_file(self, path, **kwargs):
        """Classifies one audio file (any sample rate and channel count); returns ``(log_probs, {target: label})``."""
        waveform = self.load_audio(path, **kwargs)
        log_probs, labels = self.classify_batch(waveform.unsqueeze(0), torch.tensor([1.0]))
        return log_probs, labels[0]

    def forward(self, wavs, wav_lens=None):
        """Runs :meth:`classify_batch`."""
        return self.classify_batch(wavs, wav_lens)
