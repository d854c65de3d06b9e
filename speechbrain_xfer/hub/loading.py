"""Loading an ``sbx export`` folder (or hub id) with the inference class it was exported for."""

import os
import re


class ExportError(ValueError):
    """A run that cannot be exported as it is, or a folder that is not an export."""


def load_export(source, savedir=None, **kwargs):
    """Loads an exported folder or hub id with the inference class it was exported for.

    A model with several heads is loaded with speechbrain_xfer's
    ``MultiTargetClassifier``, never by running the folder's
    ``custom_interface.py`` (which only re-exports that class).
    """
    from speechbrain.inference.ASR import EncoderASR
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.hub.interfaces import MultiTargetClassifier

    classes = {
        "EncoderASR": EncoderASR,
        "EncoderClassifier": EncoderClassifier,
        "MultiTargetClassifier": MultiTargetClassifier,
    }
    interface = exported_interface(source)
    return classes[interface].from_hparams(source=str(source), savedir=savedir, **kwargs)


def exported_interface(source):
    """The inference class named in an export's ``hyperparams.yaml`` header (fetched for a hub id)."""
    from speechbrain.utils.fetching import fetch

    if os.path.isdir(source):
        path = os.path.join(source, "hyperparams.yaml")
    else:
        path = fetch("hyperparams.yaml", source=source)
    with open(path) as f:
        header = f.read(2000)
    found = re.search(r"^# inference class: [\w.]+\.(\w+)$", header, re.MULTILINE)
    if found is None:
        raise ExportError(
            f"{source}: hyperparams.yaml does not say its inference class (an 'sbx export' "
            f"folder does); load it with the SpeechBrain class it was made for"
        )
    return found.group(1)
