"""Pretrained speech encoders: loading from the hub or a local folder, layer groups, weighted layer sums."""

from speechbrain_xfer.encoders.adapters import AdaptedEncoder, add_adapters, parameter_counts, parameter_summary
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.encoders.ge2e import GE2EEncoder, GE2EFeatures
from speechbrain_xfer.encoders.hf import HFEncoder
from speechbrain_xfer.encoders.hf_sources import SUPPORTED_MODEL_TYPES
from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.pretrained.loading import load_speechbrain_modules

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "AdaptedEncoder",
    "ConvEncoder",
    "GE2EEncoder",
    "GE2EFeatures",
    "HFEncoder",
    "PretrainedSourceError",
    "add_adapters",
    "load_speechbrain_modules",
    "parameter_counts",
    "parameter_summary",
]
