"""SpeechBrain Brains for transfer learning."""

from speechbrain_xfer.brains.classifier import UtteranceClassifierBrain
from speechbrain_xfer.brains.ctc import CTCBrain
from speechbrain_xfer.brains.schedules import LayerSchedule, layerwise_param_groups
from speechbrain_xfer.brains.transfer import TransferBrain

__all__ = ["CTCBrain", "LayerSchedule", "TransferBrain", "UtteranceClassifierBrain", "layerwise_param_groups"]
