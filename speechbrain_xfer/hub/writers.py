"""One writer per kind of exported model: what each adds to the folder, and how its outputs are compared.

:func:`writer_for` picks the writer from the run's modules: a ``ctc_head``
(:class:`CTCWriter`, ``EncoderASR``), ``heads`` with one target
(:class:`ClassifierWriter`, ``EncoderClassifier``), or several
(:class:`MultiClassifierWriter`, ``MultiTargetClassifier``). Each writes its
modules' weights and files into the export, gives the end of its
``hyperparams.yaml``, and computes the log-probabilities the export must
reproduce, from the trained modules and from the loaded export.
"""

import glob
import os
import shutil

import torch

from speechbrain_xfer.hub import yaml_nodes
from speechbrain_xfer.hub.loading import ExportError

CUSTOM_INTERFACE = '''"""Loads this model with SpeechBrain's ``foreign_class``; the class itself is in speechbrain_xfer.

    from speechbrain.inference.interfaces import foreign_class
    model = foreign_class(source="<this folder or hub id>", pymodule_file="custom_interface.py",
                          classname="MultiTargetClassifier")
"""

from speechbrain_xfer.hub.interfaces import MultiTargetClassifier

__all__ = ["MultiTargetClassifier"]
'''


def writer_for(run):
    """The writer for a :class:`~speechbrain_xfer.hub.run.FinishedRun`, from the modules it has."""
    if "ctc_head" in run.modules:
        return CTCWriter(run)
    if "heads" in run.modules:
        return ClassifierWriter(run) if len(run.targets) == 1 else MultiClassifierWriter(run)
    raise ExportError(
        f"{run.folder}/hyperparams.yaml: modules has neither 'heads' (classifier) nor 'ctc_head' "
        f"(CTC); only UtteranceClassifierBrain and CTCBrain runs can be exported"
    )


class CTCWriter:
    """A CTC model: ``ctc_head.ckpt`` and ``tokenizer.ckpt``, loaded by ``EncoderASR``."""

    kind, interface = "ctc", "speechbrain.inference.ASR.EncoderASR"

    def __init__(self, run):
        self.run = run

    def write(self, staging, nodes, memo):
        """Adds this kind's nodes to ``nodes`` and its files to ``staging``; returns the YAML's end."""
        nodes["ctc_head"] = yaml_nodes.detached(self.run.tree["modules"]["ctc_head"], memo)
        torch.save(self.run.modules["ctc_head"].state_dict(), os.path.join(staging, "ctc_head.ckpt"))
        save_folder = self.run.hparams["save_folder"]
        chars = os.path.join(save_folder, "char_tokenizer.txt")
        pieces = sorted(glob.glob(os.path.join(save_folder, "sentencepiece", "*.model")))
        if os.path.isfile(chars):
            shutil.copyfile(chars, os.path.join(staging, "tokenizer.ckpt"))
            tokenizer = "!new:speechbrain.dataio.encoder.CTCTextEncoder"
        elif pieces:
            shutil.copyfile(pieces[0], os.path.join(staging, "tokenizer.ckpt"))
            tokenizer = "!new:sentencepiece.SentencePieceProcessor"
        else:
            raise ExportError(f"no tokenizer in {save_folder} (char_tokenizer.txt or sentencepiece/*.model)")
        blank = self.run.hparams.get("blank_index", 0)
        if self.run.hparams.get("decoding", "greedy") == "beam":
            decoding = (
                f"decoding_function: !name:speechbrain.decoders.ctc.CTCBeamSearcher\n"
                f"test_beam_search:\n    blank_index: {blank}\n"
                f"    beam_size: {self.run.hparams.get('beam_size', 10)}\n"
            )
        else:
            decoding = f"decoding_function: !name:speechbrain.decoders.ctc_greedy_decode\n    blank_id: {blank}\n"
        return _CTC_YAML.format(tokenizer=tokenizer, decoding=decoding)

    def trained_log_probs(self, features, lens):
        """The trained modules' log-probabilities from the encoder's outputs: ``{"ctc": tensor}``."""
        return {"ctc": self.run.modules["ctc_head"](features)}

    def exported_log_probs(self, model, wav):
        """The loaded export's log-probabilities for one waveform."""
        return {"ctc": model.encode_batch(wav.unsqueeze(0), torch.ones(1))}


class ClassifierWriter:
    """One classifier head: ``head.ckpt`` and ``label_encoder.ckpt``, loaded by ``EncoderClassifier``."""

    kind, interface = "classifier", "speechbrain.inference.classifiers.EncoderClassifier"

    def __init__(self, run):
        self.run = run

    def write(self, staging, nodes, memo):
        """Adds this kind's nodes to ``nodes`` and its files to ``staging``; returns the YAML's end."""
        target = self.run.targets[0]
        nodes["head"] = yaml_nodes.detached(self._head_nodes()[target], memo)
        torch.save(self.heads()[target].state_dict(), os.path.join(staging, "head.ckpt"))
        self._copy_label_encoders(staging)
        return _CLASSIFIER_YAML

    def heads(self):
        """The run's heads by target, a ``ClassifierHeads`` or a ``ModuleDict``."""
        heads = self.run.modules["heads"]
        return heads.heads if hasattr(heads, "heads") else heads

    def trained_log_probs(self, features, lens):
        """The trained modules' log-probabilities from the encoder's outputs: ``{target: tensor}``."""
        log_probs, _ = _classifier_heads(self.heads())(features, lens)
        return log_probs

    def exported_log_probs(self, model, wav):
        """The loaded export's log-probabilities for one waveform."""
        out_prob, _, _, _ = model.classify_batch(wav.unsqueeze(0), torch.ones(1))
        return {self.run.targets[0]: out_prob}

    def _label_encoder_name(self, target):
        return "label_encoder.ckpt"

    def _head_nodes(self):
        node = self.run.tree["modules"]["heads"]
        tag = yaml_nodes.tag_of(node) or ""
        if tag.endswith("ModuleDict"):
            return node["modules"]
        if tag.endswith("ClassifierHeads"):
            return node["heads"]
        raise ExportError(
            f"{self.run.folder}/hyperparams.yaml: heads is {tag or 'untagged'}; the export expects "
            f"a torch.nn.ModuleDict (or ClassifierHeads) of ClassifierHead, one per target"
        )

    def _copy_label_encoders(self, staging):
        save_folder = self.run.hparams["save_folder"]
        for target in self.run.targets:
            source = os.path.join(save_folder, f"label_encoder_{target}.txt")
            if not os.path.isfile(source):
                raise ExportError(f"no label encoder {source}; the run's save folder is incomplete")
            shutil.copyfile(source, os.path.join(staging, self._label_encoder_name(target)))


class MultiClassifierWriter(ClassifierWriter):
    """Several classifier heads (the three-slot intent model): ``heads.ckpt``, loaded by ``MultiTargetClassifier``.

    No stock SpeechBrain class classifies several targets; the folder's ``custom_interface.py`` lets
    ``foreign_class`` load it too.
    """

    kind, interface = "multi_classifier", "speechbrain_xfer.hub.interfaces.MultiTargetClassifier"

    def write(self, staging, nodes, memo):
        """Adds this kind's nodes to ``nodes`` and its files to ``staging``; returns the YAML's end."""
        head_nodes = yaml_nodes.detached(self._head_nodes(), memo)
        nodes["heads"] = yaml_nodes.tagged_map("!new:speechbrain_xfer.lobes.ClassifierHeads", {"heads": head_nodes})
        torch.save(_classifier_heads(self.heads()).state_dict(), os.path.join(staging, "heads.ckpt"))
        with open(os.path.join(staging, "custom_interface.py"), "w") as f:
            f.write(CUSTOM_INTERFACE)
        self._copy_label_encoders(staging)
        return _multi_yaml(self.run.targets)

    def exported_log_probs(self, model, wav):
        """The loaded export's log-probabilities for one waveform."""
        log_probs, _ = model.classify_batch(wav.unsqueeze(0), torch.ones(1))
        return log_probs

    def _label_encoder_name(self, target):
        return f"label_encoder_{target}.ckpt"


def _classifier_heads(heads):
    from speechbrain_xfer.lobes.heads import ClassifierHeads

    return heads if isinstance(heads, ClassifierHeads) else ClassifierHeads(heads)


_CLASSIFIER_YAML = """
# EncoderClassifier calls compute_features and mean_var_norm, then embedding_model; here embedding_model
# computes the features itself (lengths exact to the frame, as in training), so those two pass the audio on.
compute_features: !new:speechbrain_xfer.lobes.PassThrough
mean_var_norm: !new:speechbrain_xfer.lobes.PassThrough
embedding_model: !new:speechbrain_xfer.lobes.UtteranceEmbedder
    encoder: !ref <encoder>
    head: !ref <head>
    compute_features: !ref <features>
    mean_var_norm: !ref <feature_normalization>
classifier: !new:speechbrain_xfer.lobes.PooledClassifier
    head: !ref <head>
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <encoder>
        head: !ref <head>
        label_encoder: !ref <label_encoder>
"""

_CTC_YAML = """
asr_model: !new:speechbrain_xfer.lobes.CTCModel
    encoder: !ref <encoder>
    ctc_head: !ref <ctc_head>
    compute_features: !ref <features>
    mean_var_norm: !ref <feature_normalization>
tokenizer: {tokenizer}
{decoding}
modules:
    encoder: !ref <asr_model>

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        encoder: !ref <encoder>
        ctc_head: !ref <ctc_head>
        tokenizer: !ref <tokenizer>
"""


def _multi_yaml(targets):
    encoders = "".join(f"label_encoder_{t}: !new:speechbrain.dataio.encoder.CategoricalEncoder\n" for t in targets)
    by_target = "".join(f"    {t}: !ref <label_encoder_{t}>\n" for t in targets)
    loadables = "".join(f"        label_encoder_{t}: !ref <label_encoder_{t}>\n" for t in targets)
    return (
        f"\nwave_encoder: !new:speechbrain_xfer.lobes.WaveformEncoder\n"
        f"    encoder: !ref <encoder>\n"
        f"    compute_features: !ref <features>\n"
        f"    mean_var_norm: !ref <feature_normalization>\n"
        f"targets: [{', '.join(targets)}]\n"
        f"{encoders}label_encoders:\n{by_target}\n"
        f"modules:\n    wave_encoder: !ref <wave_encoder>\n    heads: !ref <heads>\n\n"
        f"pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        f"    loadables:\n        encoder: !ref <encoder>\n        heads: !ref <heads>\n{loadables}"
    )
