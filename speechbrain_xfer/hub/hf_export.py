"""What an export of a hub-format encoder (:class:`~speechbrain_xfer.encoders.HFEncoder`) holds instead of the
ConvEncoder's ``encoder.ckpt``.

- ``config.json``, ``model.safetensors``, ``preprocessor_config.json``: the fine-tuned ``transformers`` model as
  ``save_pretrained`` writes it, so the folder is also a ``pretrained_source`` that ``HFEncoder`` and
  ``transformers.AutoModel`` load (fine-tuning it again);
- ``encoder.ckpt``: what ``HFEncoder`` adds to the model (the layer-sum weights);
- in ``hyperparams.yaml``, an ``HFEncoder`` built from the two configs written inline, so loading reads no
  other file and needs no hub, and a :class:`~speechbrain_xfer.hub.pretrainer.FilePretrainer` that loads the
  weights from ``model.safetensors`` (one copy of them in the folder).
"""

import json
import os

import torch
from ruamel.yaml.comments import CommentedMap

from speechbrain_xfer.encoders.hf_folders import encoder_extras, write_encoder_files
from speechbrain_xfer.hub import yaml_nodes

STOCK_PRETRAINER = (
    "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
    "    loadables:\n"
    "        encoder: !ref <encoder>\n"
)
HF_PRETRAINER = (
    "pretrainer: !new:speechbrain_xfer.hub.pretrainer.FilePretrainer\n"
    "    files:\n"
    "        encoder_model: model.safetensors\n"
    "    custom_hooks:\n"
    "        encoder: !name:speechbrain_xfer.encoders.hf_folders.load_encoder_extras\n"
    "        encoder_model: !name:speechbrain_xfer.encoders.hf_folders.load_model_weights\n"
    "    loadables:\n"
    "        encoder: !ref <encoder>\n"
    "        encoder_model: !ref <encoder.model>\n"
)


def is_hf_encoder(encoder):
    from speechbrain_xfer.encoders.hf import HFEncoder

    return isinstance(encoder, HFEncoder)


def hf_encoder_node(encoder):
    """The ``hyperparams.yaml`` node that builds ``encoder``'s architecture from its configs alone."""
    extractor = encoder.wrapper.feature_extractor
    fields = {
        "source": None,
        "config": json.loads(encoder.model.config.to_json_string()),
        "feature_extractor": json.loads(extractor.to_json_string()),
        "freeze": True,  # inference: eval mode, no gradient
        "layer_sum": encoder.layer_sum,
        "output_layer": encoder.output_layer,
        "whisper_window": encoder.whisper_window,
    }
    return yaml_nodes.tagged_map("!new:speechbrain_xfer.encoders.HFEncoder", CommentedMap(fields))


def write_hf_encoder(encoder, folder):
    """Writes the hub-format files and ``encoder.ckpt`` of ``encoder`` into ``folder``."""
    write_encoder_files(encoder.model, encoder.wrapper.feature_extractor, folder)
    torch.save(encoder_extras(encoder), os.path.join(folder, "encoder.ckpt"))


def hf_pretrainer(text):
    """``hyperparams.yaml`` with its Pretrainer loading the encoder from ``model.safetensors`` and ``encoder.ckpt``."""
    if STOCK_PRETRAINER not in text:
        raise ValueError("the export's hyperparams.yaml has no stock Pretrainer whose encoder to replace")
    return text.replace(STOCK_PRETRAINER, HF_PRETRAINER)
