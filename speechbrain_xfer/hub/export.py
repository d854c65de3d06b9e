"""``sbx export``: a finished recipe run to a folder that SpeechBrain's inference classes load.

The folder holds:

- ``hyperparams.yaml``: the run's own module definitions (copied from its
  ``hyperparams.yaml``), wrapped for the inference class, and a ``pretrainer``;
- ``encoder.ckpt`` (the encoder alone, so that the folder also serves as
  ``pretrained_source`` for further fine-tuning), ``head.ckpt``,
  ``heads.ckpt`` or ``ctc_head.ckpt``: ``state_dict`` files, loadable with
  ``torch.load(..., weights_only=True)``;
- ``label_encoder*.ckpt`` (SpeechBrain's ``CategoricalEncoder`` text format)
  or ``tokenizer.ckpt`` (``CTCTextEncoder`` text, or a SentencePiece model);
- ``README.md``, the model card; ``example.wav``, one test utterance
  (SynthSpeech runs, or a file given with ``example``);
- ``custom_interface.py`` where no stock class serves (several heads).

Which class loads it:

- one classifier head: ``speechbrain.inference.classifiers.EncoderClassifier``;
- CTC: ``speechbrain.inference.ASR.EncoderASR``;
- several heads (three-slot intent): :class:`speechbrain_xfer.hub.interfaces.MultiTargetClassifier`,
  also through ``foreign_class(..., pymodule_file="custom_interface.py")``.

The folder is written beside its final place and renamed into it only after
the exported model, loaded back through its inference class, has given the
trained modules' outputs on a test utterance.
"""

import csv
import glob
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field

import torch

from speechbrain_xfer.hub import yaml_nodes
from speechbrain_xfer.hub.card import write_model_card
from speechbrain_xfer.hub.hf_export import hf_encoder_node, hf_pretrainer, is_hf_encoder, write_hf_encoder

logger = logging.getLogger(__name__)

VERIFY_TOLERANCE = 1e-4
"""Largest difference of log-probabilities allowed between the export and the trained modules."""

CUSTOM_INTERFACE = '''"""Loads this model with SpeechBrain's ``foreign_class``; the class itself is in speechbrain_xfer.

    from speechbrain.inference.interfaces import foreign_class
    model = foreign_class(source="<this folder or hub id>", pymodule_file="custom_interface.py",
                          classname="MultiTargetClassifier")
"""

from speechbrain_xfer.hub.interfaces import MultiTargetClassifier

__all__ = ["MultiTargetClassifier"]
'''


class ExportError(ValueError):
    """A run that cannot be exported as it is."""


@dataclass
class ExportedModel:
    """What :func:`export_experiment` wrote, and what it measured."""

    folder: str
    kind: str  # "classifier", "multi_classifier" or "ctc"
    interface: str
    targets: list = field(default_factory=list)
    test_stats: dict = field(default_factory=dict)
    max_abs_diff: float = 0.0


def export_experiment(experiment_dir, out_dir, repo_id=None, language="en", license="apache-2.0", dataset=None,
                      example=None, overwrite=False, extra_files=None):  # fmt: skip
    """Exports a finished recipe run (its output folder) to ``out_dir``.

    Arguments
    ---------
    experiment_dir : str
        The run's ``output_folder``: ``hyperparams.yaml``, ``summary.json`` and ``save/``.
    out_dir : str
        The export folder; refused if it exists, unless ``overwrite``.
    repo_id : str, optional
        The hub repository the model will be pushed to (``user/name``); the
        model card's usage code loads from there (else from ``out_dir``).
    language, license, dataset : str
        Model card metadata (``dataset`` defaults to the recipe's dataset).
    example : str, optional
        An audio file copied to ``example.wav`` for the usage code; by default
        the first test utterance of a SynthSpeech run (a real dataset's audio
        is not copied without being asked: its license may forbid it).
    overwrite : bool
        Replace an existing ``out_dir``.
    extra_files : dict, optional
        ``{file name: tensor dict}`` written into the folder as well (e.g. the
        EWC statistics the pretraining recipe adds).

    Returns
    -------
    ExportedModel
    """
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise ExportError(f"{out_dir} exists; choose another folder or pass --overwrite")
    run = _Run(experiment_dir)
    staging = f"{out_dir}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        exported = run.write(staging, out_dir, example)
        for name, tensors in (extra_files or {}).items():
            torch.save(tensors, os.path.join(staging, name))
        exported.max_abs_diff = run.verify(staging)
        write_model_card(os.path.join(staging, "README.md"), run.card_info(exported, repo_id, language, license,
                                                                           dataset))  # fmt: skip
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    logger.info("exported %s to %s (%s; max |log-prob difference| %.2g)", experiment_dir, out_dir,
                exported.interface, exported.max_abs_diff)  # fmt: skip
    return exported


class _Run:
    """A finished run: its hyperparameters, built and with the best checkpoint loaded."""

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        hparams_file = os.path.join(self.folder, "hyperparams.yaml")
        summary_file = os.path.join(self.folder, "summary.json")
        for path, what in ((hparams_file, "a recipe's output_folder"), (summary_file, "a finished run")):
            if not os.path.isfile(path):
                raise ExportError(f"{self.folder} has no {os.path.basename(path)}: give {what} (its "
                                  f"hyperparams.yaml, summary.json and save/ folder)")  # fmt: skip
        with open(summary_file) as f:
            self.summary = json.load(f)
        with open(hparams_file) as f:
            self.header = f.read(2000)
        self.tree = yaml_nodes.read_tree(hparams_file)
        self.hparams = _load_run_hparams(hparams_file)
        self.modules = self.hparams["modules"]
        if "ctc_head" in self.modules:
            self.kind = "ctc"
        elif "heads" in self.modules:
            self.targets = list(self.hparams["targets"])
            self.kind = "classifier" if len(self.targets) == 1 else "multi_classifier"
        else:
            raise ExportError(f"{hparams_file}: modules has neither 'heads' (classifier) nor 'ctc_head' (CTC); "
                              f"only UtteranceClassifierBrain and CTCBrain runs can be exported")  # fmt: skip
        self._load_best_checkpoint()

    def _load_best_checkpoint(self):
        from speechbrain_xfer.encoders.adapters import AdaptedEncoder
        from speechbrain_xfer.recipe_config import load_pretrained

        if isinstance(self.modules["encoder"], AdaptedEncoder):
            # Adapter checkpoints hold only what trained; the frozen weights come from the pretrained source.
            load_pretrained(self.hparams)
        key = "max_key" if self.summary.get("higher_is_better", True) else "min_key"
        checkpoint = self.hparams["checkpointer"].recover_if_possible(**{key: self.summary["metric"]})
        if checkpoint is None:
            raise ExportError(f"no checkpoint in {self.hparams['checkpointer'].checkpoints_dir}; was the run's "
                              f"save folder moved or cleaned?")  # fmt: skip
        self.checkpoint = checkpoint.path
        for module in self.modules.values():
            module.eval()
        self.encoder = _exported_encoder(self.modules["encoder"])

    # -- writing --------------------------------------------------------
    def write(self, staging, out_dir, example):
        memo = {}  # one memo: objects the run's modules share stay shared in the export
        encoder_node = self.tree["modules"]["encoder"]
        live = {id(encoder_node): self.modules["encoder"]}
        if self.encoder is not self.modules["encoder"]:
            live[id(encoder_node["encoder"])] = self.encoder
        yaml_nodes.resolve_getattr(self.tree, live)
        nodes = {
            "features": yaml_nodes.detached(self.tree.get("compute_features"), memo),
            "feature_normalization": yaml_nodes.detached(self.tree.get("mean_var_norm"), memo),
        }
        hf = is_hf_encoder(self.encoder)
        if hf:
            nodes["encoder"] = hf_encoder_node(self.encoder)
            write_hf_encoder(self.encoder, staging)
        else:
            if self.encoder is not self.modules["encoder"]:  # LoRA merged: the wrapped encoder's own definition
                encoder_node = encoder_node["encoder"]
            nodes["encoder"] = yaml_nodes.detached(encoder_node, memo)
            torch.save(self.encoder.state_dict(), os.path.join(staging, "encoder.ckpt"))
        if self.kind == "ctc":
            nodes["ctc_head"] = yaml_nodes.detached(self.tree["modules"]["ctc_head"], memo)
            torch.save(self.modules["ctc_head"].state_dict(), os.path.join(staging, "ctc_head.ckpt"))
            tail, interface = self._write_ctc(staging), "speechbrain.inference.ASR.EncoderASR"
        else:
            head_nodes = self._head_nodes()
            if self.kind == "classifier":
                nodes["head"] = yaml_nodes.detached(head_nodes[self.targets[0]], memo)
                torch.save(self._heads()[self.targets[0]].state_dict(), os.path.join(staging, "head.ckpt"))
                tail, interface = _CLASSIFIER_YAML, "speechbrain.inference.classifiers.EncoderClassifier"
            else:
                nodes["heads"] = yaml_nodes.tagged_map(
                    "!new:speechbrain_xfer.lobes.ClassifierHeads",
                    {"heads": yaml_nodes.detached(head_nodes, memo)},
                )
                torch.save(_classifier_heads(self._heads()).state_dict(), os.path.join(staging, "heads.ckpt"))
                with open(os.path.join(staging, "custom_interface.py"), "w") as f:
                    f.write(CUSTOM_INTERFACE)
                tail, interface = _multi_yaml(self.targets), "speechbrain_xfer.hub.interfaces.MultiTargetClassifier"
            self._copy_label_encoders(staging)
        text = _yaml_header(self, interface) + yaml_nodes.dump(nodes) + tail
        if hf:
            text = hf_pretrainer(text)
        foreign = yaml_nodes.foreign_classes(text)
        if foreign:
            logger.warning("the exported hyperparams.yaml builds %s: whoever loads it needs those packages", foreign)
        with open(os.path.join(staging, "hyperparams.yaml"), "w") as f:
            f.write(text)
        self.example = self._copy_example(staging, example)
        return ExportedModel(out_dir, self.kind, interface, list(getattr(self, "targets", [])),
                             dict(self.summary.get("test") or {}))  # fmt: skip

    def _heads(self):
        heads = self.modules["heads"]
        return heads.heads if hasattr(heads, "heads") else heads

    def _head_nodes(self):
        node = self.tree["modules"]["heads"]
        tag = yaml_nodes.tag_of(node) or ""
        if tag.endswith("ModuleDict"):
            return node["modules"]
        if tag.endswith("ClassifierHeads"):
            return node["heads"]
        raise ExportError(f"{self.folder}/hyperparams.yaml: heads is {tag or 'untagged'}; the export expects a "
                          f"torch.nn.ModuleDict (or ClassifierHeads) of ClassifierHead, one per target")  # fmt: skip

    def _copy_label_encoders(self, staging):
        save_folder = self.hparams["save_folder"]
        for target in self.targets:
            source = os.path.join(save_folder, f"label_encoder_{target}.txt")
            if not os.path.isfile(source):
                raise ExportError(f"no label encoder {source}; the run's save folder is incomplete")
            name = "label_encoder.ckpt" if self.kind == "classifier" else f"label_encoder_{target}.ckpt"
            shutil.copyfile(source, os.path.join(staging, name))

    def _write_ctc(self, staging):
        save_folder = self.hparams["save_folder"]
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
        blank = self.hparams.get("blank_index", 0)
        if self.hparams.get("decoding", "greedy") == "beam":
            decoding = (f"decoding_function: !name:speechbrain.decoders.ctc.CTCBeamSearcher\n"
                        f"test_beam_search:\n    blank_index: {blank}\n"
                        f"    beam_size: {self.hparams.get('beam_size', 10)}\n")  # fmt: skip
        else:
            decoding = f"decoding_function: !name:speechbrain.decoders.ctc_greedy_decode\n    blank_id: {blank}\n"
        return _CTC_YAML.format(tokenizer=tokenizer, decoding=decoding)

    def _copy_example(self, staging, example):
        if example is None and self.recipe()[0] == "SynthSpeech":
            example = _first_test_file(self.hparams)
        if not example:
            return None
        if not os.path.isfile(example):
            raise ExportError(f"no such example audio file: {example}")
        shutil.copyfile(example, os.path.join(staging, "example.wav"))
        return os.path.join(staging, "example.wav")

    def recipe(self):
        """``(dataset, task, method)`` of the recipe the run came from, from its YAML's header."""
        found = re.search(r"recipes/([^/\s]+)/([^/\s]+)/hparams/([^/\s]+)\.ya?ml", self.header)
        return found.groups() if found else ("unknown", "unknown", "unknown")

    # -- checking -------------------------------------------------------
    def verify(self, staging):
        """Loads the export through its inference class; returns the largest log-prob difference to the run's."""
        import soundfile

        if self.example is not None:
            wav = torch.from_numpy(soundfile.read(self.example, dtype="float32")[0])
        else:
            wav = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1
        with tempfile.TemporaryDirectory() as savedir:
            model = load_export(staging, savedir=savedir)
            exported = _exported_log_probs(model, self.kind, getattr(self, "targets", []), wav)
        expected = self.log_probs(wav)
        diff = max(float((exported[k] - expected[k]).abs().max()) for k in expected)
        if not diff <= VERIFY_TOLERANCE:
            raise ExportError(f"the exported model's log-probabilities differ from the run's by {diff:.3g} "
                              f"(> {VERIFY_TOLERANCE}); nothing was written")  # fmt: skip
        return diff

    def log_probs(self, wav):
        """The trained modules' log-probabilities for one waveform: ``{target or "ctc": tensor}``."""
        from speechbrain_xfer.lobes.inference import encode_waveforms

        with torch.no_grad():
            features, _, _, lens = encode_waveforms(self.modules["encoder"], wav.unsqueeze(0), torch.ones(1),
                                                    self.hparams.get("compute_features"),
                                                    self.hparams.get("mean_var_norm"))  # fmt: skip
            if self.kind == "ctc":
                return {"ctc": self.modules["ctc_head"](features)}
            log_probs, _ = _classifier_heads(self._heads())(features, lens)
            return log_probs

    def card_info(self, exported, repo_id, language, license, dataset):
        recipe_dataset, task, method = self.recipe()
        return {
            "kind": exported.kind,
            "interface": exported.interface,
            "source": repo_id or exported.folder,
            "name": (repo_id or exported.folder).rstrip("/").split("/")[-1],
            "language": language,
            "license": license,
            "dataset": dataset or recipe_dataset,
            "task": task,
            "method": method,
            "targets": exported.targets,
            "summary": self.summary,
            "encoder": type(self.modules["encoder"]).__name__,
            "pretrained_source": self.hparams.get("pretrained_source"),
            "regularizers": sorted(self.hparams.get("regularizers") or {}),
            "train_examples": _count_rows(self.hparams.get("train_csv")),
            "example": self.example is not None,
        }


def load_export(source, savedir=None, **kwargs):
    """Loads an exported folder or hub id with the inference class it was exported for.

    A model with several heads is loaded with speechbrain_xfer's
    ``MultiTargetClassifier``, never by running the folder's
    ``custom_interface.py`` (which only re-exports that class).
    """
    from speechbrain.inference.ASR import EncoderASR
    from speechbrain.inference.classifiers import EncoderClassifier

    from speechbrain_xfer.hub.interfaces import MultiTargetClassifier

    classes = {"EncoderASR": EncoderASR, "EncoderClassifier": EncoderClassifier,
               "MultiTargetClassifier": MultiTargetClassifier}  # fmt: skip
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
        raise ExportError(f"{source}: hyperparams.yaml does not say its inference class (an 'sbx export' "
                          f"folder does); load it with the SpeechBrain class it was made for")  # fmt: skip
    return found.group(1)


def _exported_log_probs(model, kind, targets, wav):
    with torch.no_grad():
        if kind == "ctc":
            return {"ctc": model.encode_batch(wav.unsqueeze(0), torch.ones(1))}
        if kind == "classifier":
            out_prob, _, _, _ = model.classify_batch(wav.unsqueeze(0), torch.ones(1))
            return {targets[0]: out_prob}
        log_probs, _ = model.classify_batch(wav.unsqueeze(0), torch.ones(1))
        return log_probs


def _exported_encoder(encoder):
    """The encoder as exported: a LoRA-adapted one with its adapters merged into the weights, else itself."""
    from speechbrain_xfer.encoders.adapters import AdaptedEncoder

    if isinstance(encoder, AdaptedEncoder) and encoder.kind == "lora":
        return encoder.merged().eval()
    return encoder


def _classifier_heads(heads):
    from speechbrain_xfer.lobes.heads import ClassifierHeads

    return heads if isinstance(heads, ClassifierHeads) else ClassifierHeads(heads)


def _load_run_hparams(hparams_file):
    from speechbrain_xfer.recipe_config import load_recipe_hparams

    seed = os.environ.get("SB_GLOBAL_SEED")
    try:
        return load_recipe_hparams(hparams_file)
    finally:
        # The run's YAML seeds SpeechBrain globally when built; exporting must not change the caller's seed.
        if seed is None:
            os.environ.pop("SB_GLOBAL_SEED", None)
        else:
            os.environ["SB_GLOBAL_SEED"] = seed


def _first_test_file(hparams):
    path = hparams.get("test_csv")
    if not path or not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        row = next(csv.DictReader(f), None)
    return row["wav"].replace("$data_root", hparams["data_folder"]) if row else None


def _count_rows(path):
    if not path or not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def _yaml_header(run, interface):
    dataset, task, method = run.recipe()
    return (f"# ############################################################################\n"
            f"# Exported by speechbrain_xfer (sbx export) from the {dataset} {task} recipe, method {method}:\n"
            f"# {run.folder}, checkpoint {os.path.basename(run.checkpoint)}.\n"
            f"# inference class: {interface}\n"
            f"# The module definitions are the run's own; the weights are loaded by the pretrainer below.\n"
            f"# ############################################################################\n\n"
            f"sample_rate: 16000\n\n")  # fmt: skip


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
    return (f"\nwave_encoder: !new:speechbrain_xfer.lobes.WaveformEncoder\n"
            f"    encoder: !ref <encoder>\n"
            f"    compute_features: !ref <features>\n"
            f"    mean_var_norm: !ref <feature_normalization>\n"
            f"targets: [{', '.join(targets)}]\n"
            f"{encoders}label_encoders:\n{by_target}\n"
            f"modules:\n    wave_encoder: !ref <wave_encoder>\n    heads: !ref <heads>\n\n"
            f"pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
            f"    loadables:\n        encoder: !ref <encoder>\n        heads: !ref <heads>\n{loadables}")  # fmt: skip
