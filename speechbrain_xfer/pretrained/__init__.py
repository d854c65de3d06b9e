"""Pretrained weights from files: fetching ``<name>.ckpt`` files from a folder or a hub id, checked loading."""

from speechbrain_xfer.pretrained.errors import PretrainedSourceError
from speechbrain_xfer.pretrained.loading import load_speechbrain_modules, save_pretrained_folder

__all__ = ["PretrainedSourceError", "load_speechbrain_modules", "save_pretrained_folder"]
