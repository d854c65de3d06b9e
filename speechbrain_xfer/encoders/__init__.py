"""Pretrained speech encoders: loading from the hub or a local folder, layer groups, weighted layer sums."""

from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.encoders.errors import PretrainedSourceError
from speechbrain_xfer.encoders.hf import SUPPORTED_MODEL_TYPES, HFEncoder
from speechbrain_xfer.encoders.speechbrain_pretrained import load_speechbrain_modules

__all__ = ["SUPPORTED_MODEL_TYPES", "ConvEncoder", "HFEncoder", "PretrainedSourceError", "load_speechbrain_modules"]
