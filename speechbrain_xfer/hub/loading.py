"""Loading an ``sbx export`` folder (or hub id) with the inference class it was exported for."""

import os
import re


class ExportError(ValueError):
    """A run that cannot be exported as it is, or a folder that is not an export."""


TRUSTED_PACKAGES = ("torch", "speechbrain", "speechbrain_xfer", "sentencepiece")
"""Packages whose code a model's ``hyperparams.yaml`` may call without ``trust_remote_code``: what the exports of
``sbx export`` build (sentencepiece: the tokenizer of an ASR model)."""

# The hyperpyyaml tags that run code, with what they name; !include: reads (and runs) another file.
_CODE_TAG = re.compile(r"!(new|name|apply|applyref|module):([\w.]+)|!(include):(\S+)")


def untrusted_code(text):
    """``[(tag, name)]`` of the tags of a YAML text that call code outside :data:`TRUSTED_PACKAGES`.

    Example
    -------
    >>> untrusted_code("a: !new:torch.nn.Linear [2, 2]\\nb: !apply:os.system [ls]\\nc: !name:speechbrain.nnet.CNN")
    [('!apply:', 'os.system')]
    """
    found = []
    for match in _CODE_TAG.finditer(text):
        tag, name = (match[1], match[2]) if match[1] else (match[3], match[4])
        if tag == "include" or name.split(".")[0] not in TRUSTED_PACKAGES:
            found.append((f"!{tag}:", name))
    return found


def load_export(source, savedir=None, trust_remote_code=False, **kwargs):
    """Loads an exported folder or hub id with the inference class it was exported for.

    A model with several heads is loaded with speechbrain_xfer's
    ``MultiTargetClassifier``, never by running the folder's
    ``custom_interface.py`` (which only re-exports that class). Loading a
    ``hyperparams.yaml`` runs the code its tags name: one that names code outside
    :data:`TRUSTED_PACKAGES` is refused before anything runs, unless
    ``trust_remote_code`` (as Hugging Face's ``trust_remote_code=True``).
    """
    from speechbrain.inference.ASR import EncoderASR
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.hub.interfaces import MultiTargetClassifier

    classes = {
        "EncoderASR": EncoderASR,
        "EncoderClassifier": EncoderClassifier,
        "MultiTargetClassifier": MultiTargetClassifier,
    }
    text = _hyperparams_text(source)
    untrusted = [] if trust_remote_code else untrusted_code(text)
    if untrusted:
        shown = ", ".join(f"{tag}{name} (module {name.rsplit('.', 1)[0] if tag != '!include:' else 'a file'})"
                          for tag, name in untrusted[:5])  # fmt: skip
        raise ExportError(
            f"{source}: its hyperparams.yaml runs code outside {', '.join(TRUSTED_PACKAGES)}: {shown}; "
            f"nothing was run. Load it only if you trust its author: --trust-remote-code "
            f"(load_export(..., trust_remote_code=True))"
        )
    interface = exported_interface(source, text)
    return classes[interface].from_hparams(source=str(source), savedir=savedir, **kwargs)


def _hyperparams_text(source):
    """The text of the ``hyperparams.yaml`` of a folder or hub id (fetched)."""
    from speechbrain.utils.fetching import fetch

    if os.path.isdir(source):
        path = os.path.join(source, "hyperparams.yaml")
    else:
        path = fetch("hyperparams.yaml", source=source)
    with open(path) as f:
        return f.read()


def exported_interface(source, text=None):
    """The inference class named in an export's ``hyperparams.yaml`` header (fetched for a hub id)."""
    header = (text if text is not None else _hyperparams_text(source))[:2000]
    found = re.search(r"^# inference class: [\w.]+\.(\w+)$", header, re.MULTILINE)
    if found is None:
        raise ExportError(
            f"{source}: hyperparams.yaml does not say its inference class (an 'sbx export' "
            f"folder does); load it with the SpeechBrain class it was made for"
        )
    return found.group(1)
