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

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import torch

from speechbrain_xfer.hub import yaml_nodes
from speechbrain_xfer.hub.card import write_model_card
from speechbrain_xfer.hub.hf_export import hf_encoder_node, hf_pretrainer, is_hf_encoder, write_hf_encoder
from speechbrain_xfer.hub.loading import ExportError, load_export
from speechbrain_xfer.hub.run import FinishedRun
from speechbrain_xfer.hub.writers import writer_for

logger = logging.getLogger(__name__)

VERIFY_TOLERANCE = 1e-4
"""Largest difference of log-probabilities allowed between the export and the trained modules."""


@dataclass
class ExportedModel:
    """What :func:`export_experiment` wrote, and what it measured."""

    folder: str
    kind: str  # "classifier", "multi_classifier" or "ctc"
    interface: str
    targets: list = field(default_factory=list)
    test_stats: dict = field(default_factory=dict)
    max_abs_diff: float = 0.0


def export_experiment(
    experiment_dir,
    out_dir,
    repo_id=None,
    language="en",
    license="apache-2.0",
    dataset=None,
    example=None,
    overwrite=False,
    extra_files=None,
):
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
        the first test utterance of a run on the SynthSpeech corpus (a real
        dataset's audio is not copied without being asked: its license may forbid it).
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
    export = _Export(FinishedRun(experiment_dir))
    staging = f"{out_dir}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        exported = export.write(staging, out_dir, example)
        for name, tensors in (extra_files or {}).items():
            torch.save(tensors, os.path.join(staging, name))
        exported.max_abs_diff = export.verify(staging)
        card = export.card_info(exported, repo_id, language, license, dataset)
        write_model_card(os.path.join(staging, "README.md"), card)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    logger.info(
        "exported %s to %s (%s; max |log-prob difference| %.2g)",
        experiment_dir,
        out_dir,
        exported.interface,
        exported.max_abs_diff,
    )
    return exported


class _Export:
    """The export of one finished run: the encoder as exported, the kind's writer, the example audio."""

    def __init__(self, run):
        self.run = run
        self.writer = writer_for(run)
        self.encoder = _exported_encoder(run.modules["encoder"])
        self.example = None

    def write(self, staging, out_dir, example):
        run, memo = self.run, {}  # one memo: objects the run's modules share stay shared in the export
        encoder_node = run.tree["modules"]["encoder"]
        live = {id(encoder_node): run.modules["encoder"]}
        if self.encoder is not run.modules["encoder"]:
            live[id(encoder_node["encoder"])] = self.encoder
        yaml_nodes.resolve_getattr(run.tree, live)
        nodes = {
            "features": yaml_nodes.detached(run.tree.get("compute_features"), memo),
            "feature_normalization": yaml_nodes.detached(run.tree.get("mean_var_norm"), memo),
        }
        hf = is_hf_encoder(self.encoder)
        if hf:
            nodes["encoder"] = hf_encoder_node(self.encoder)
            write_hf_encoder(self.encoder, staging)
        else:
            if self.encoder is not run.modules["encoder"]:  # LoRA merged: the wrapped encoder's own definition
                encoder_node = encoder_node["encoder"]
            nodes["encoder"] = yaml_nodes.detached(encoder_node, memo)
            torch.save(self.encoder.state_dict(), os.path.join(staging, "encoder.ckpt"))
        tail = self.writer.write(staging, nodes, memo)
        text = self._yaml_header() + yaml_nodes.dump(nodes) + tail
        if hf:
            text = hf_pretrainer(text)
        foreign = yaml_nodes.foreign_classes(text)
        if foreign:
            logger.warning("the exported hyperparams.yaml builds %s: whoever loads it needs those packages", foreign)
        with open(os.path.join(staging, "hyperparams.yaml"), "w") as f:
            f.write(text)
        self.example = self._copy_example(staging, example)
        return ExportedModel(
            out_dir, self.writer.kind, self.writer.interface, list(run.targets), dict(run.summary.get("test") or {})
        )

    def _copy_example(self, staging, example):
        if example is None and self.run.is_synthetic_corpus():
            example = self.run.first_test_file()
        if not example:
            return None
        if not os.path.isfile(example):
            raise ExportError(f"no such example audio file: {example}")
        shutil.copyfile(example, os.path.join(staging, "example.wav"))
        return os.path.join(staging, "example.wav")

    def _yaml_header(self):
        _, task, method = self.run.recipe()
        dataset = self.run.dataset()
        return (
            f"# ############################################################################\n"
            f"# Exported by speechbrain_xfer (sbx export) from the {dataset} {task} recipe, method {method}:\n"
            f"# {self.run.folder}, checkpoint {os.path.basename(self.run.checkpoint)}.\n"
            f"# inference class: {self.writer.interface}\n"
            f"# The module definitions are the run's own; the weights are loaded by the pretrainer below.\n"
            f"# ############################################################################\n\n"
            f"sample_rate: 16000\n\n"
        )

    def verify(self, staging):
        """Loads the export through its inference class; returns the largest log-prob difference to the run's."""
        import soundfile

        from speechbrain_xfer.lobes.inference import encode_waveforms

        if self.example is not None:
            wav = torch.from_numpy(soundfile.read(self.example, dtype="float32")[0])
        else:
            wav = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1
        with tempfile.TemporaryDirectory() as savedir, torch.no_grad():
            exported = self.writer.exported_log_probs(load_export(staging, savedir=savedir), wav)
            front_end = [self.run.hparams.get(key) for key in ("compute_features", "mean_var_norm")]
            encoder = self.run.modules["encoder"]
            features, _, _, lens = encode_waveforms(encoder, wav.unsqueeze(0), torch.ones(1), *front_end)
            expected = self.writer.trained_log_probs(features, lens)
        diff = max(float((exported[k] - expected[k]).abs().max()) for k in expected)
        if not diff <= VERIFY_TOLERANCE:
            raise ExportError(
                f"the exported model's log-probabilities differ from the run's by {diff:.3g} "
                f"(> {VERIFY_TOLERANCE}); nothing was written"
            )
        return diff

    def card_info(self, exported, repo_id, language, license, dataset):
        """What the model card (:func:`~speechbrain_xfer.hub.card.write_model_card`) says of the export."""
        _, task, method = self.run.recipe()
        hparams = self.run.hparams
        return {
            "kind": exported.kind,
            "interface": exported.interface,
            "source": repo_id or exported.folder,
            "name": (repo_id or exported.folder).rstrip("/").split("/")[-1],
            "language": language,
            "license": license,
            "dataset": dataset or self.run.dataset(),
            "task": task,
            "method": method,
            "targets": exported.targets,
            "summary": self.run.summary,
            "encoder": type(self.run.modules["encoder"]).__name__,
            "pretrained_source": hparams.get("pretrained_source"),
            "regularizers": sorted(hparams.get("regularizers") or {}),
            "train_examples": self.run.train_examples(),
            "example": self.example is not None,
        }


def _exported_encoder(encoder):
    """The encoder as exported: a LoRA-adapted one with its adapters merged into the weights, else itself."""
    from speechbrain_xfer.encoders.adapters import AdaptedEncoder

    if isinstance(encoder, AdaptedEncoder) and encoder.kind == "lora":
        return encoder.merged().eval()
    return encoder
