"""UtteranceClassifierBrain: keywords, intent and emotion from one utterance.

encoder -> one ClassifierHead per target (pooling + classifier). A flat task
has one target (``intent``); the three-slot intent form has three
(``action``, ``object``, ``location``), and its accuracy counts an utterance
as right only when every slot is.

hparams read here: ``targets``, ``heads`` (a ModuleDict also in ``modules``),
``compute_features`` and ``mean_var_norm`` (for filterbank encoders),
``wav_augment`` (a SpeechBrain Augmenter, training only), ``label_encoders``,
``checkpointer``, ``train_logger``, ``output_folder`` (where the test
stage writes ``confusion_<target>.tsv`` and ``predictions.tsv``, one row per
test utterance).

A batch that carries ``encoded`` (the frozen-encoder feature cache, see
:mod:`speechbrain_xfer.data.feature_cache`) skips the front end and the
encoder; regularizers that need the encoder's input (DELTA) do not apply then.
"""

import os

import speechbrain as sb
import torch

from speechbrain_xfer.brains.metrics import confusion_matrix, macro_f1
from speechbrain_xfer.brains.schedules import unwrapped
from speechbrain_xfer.brains.transfer import TransferBrain
from speechbrain_xfer.lobes.heads import ClassifierHeads


class UtteranceClassifierBrain(TransferBrain):
    """Utterance classification on top of a (pretrained) encoder."""

    def __init__(self, modules=None, opt_class=None, hparams=None, run_opts=None, checkpointer=None):
        super().__init__(modules, opt_class, hparams, run_opts, checkpointer)
        if isinstance(self.modules.heads, torch.nn.ModuleDict):
            # One module with a forward, so that DDP synchronizes the heads' gradients.
            self.modules.heads = ClassifierHeads(self.modules.heads)
        self._check_heads()

    def _check_heads(self):
        heads = self.modules.heads.heads
        missing = [t for t in self.hparams.targets if t not in heads]
        if missing:
            raise ValueError(f"targets {missing} have no head in `heads` (heads: {sorted(heads)})")
        for target, encoder in (getattr(self.hparams, "label_encoders", None) or {}).items():
            n_classes = heads[target].n_classes
            if n_classes != len(encoder):
                raise ValueError(
                    f"the {target!r} head has n_classes: {n_classes} but the training manifest has "
                    f"{len(encoder)} labels ({', '.join(map(str, encoder.ind2lab.values()))}); "
                    f"set n_classes: {len(encoder)} in the YAML"
                )

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        if hasattr(batch, "encoded"):
            # A frozen encoder's outputs, computed once per utterance (data.feature_cache); no encoder input.
            (features, lens), x = batch.encoded, None
            feature_lens = lens
            finish = getattr(unwrapped(self.modules.encoder), "finish_cached", None)
            if finish is not None:
                features = finish(features)
        else:
            features, x, lens, feature_lens = self.encode(batch, stage)
        log_probs, pooled = self.modules.heads(features, feature_lens)
        return {"features": features, "encoder_input": x, "lens": lens, "log_probs": log_probs, "pooled": pooled}

    def _labels(self, batch, target):
        labels = getattr(batch, f"{target}_encoded").data.view(-1)
        augment = getattr(self.hparams, "wav_augment", None)
        # Cached outputs were augmented one utterance at a time (data.feature_cache): one label each already.
        if self.modules.training and augment is not None and not hasattr(batch, "encoded"):
            labels = augment.replicate_labels(labels)
        return labels

    def compute_task_loss(self, outputs, batch, stage):
        loss = 0.0
        for target in self.hparams.targets:
            log_probs = outputs["log_probs"][target]
            labels = self._labels(batch, target)
            loss = loss + torch.nn.functional.nll_loss(log_probs, labels)
            if stage != sb.Stage.TRAIN:
                self._predictions[target].append(log_probs.argmax(dim=-1).cpu())
                self._targets[target].append(labels.cpu())
        if stage != sb.Stage.TRAIN:
            self._ids.extend(batch.id)
        return loss

    def on_stage_start(self, stage, epoch=None):
        super().on_stage_start(stage, epoch)
        self._predictions = {t: [] for t in self.hparams.targets}
        self._targets = {t: [] for t in self.hparams.targets}
        self._ids = []

    def classification_stats(self):
        """Accuracy (all targets right), and per target accuracy, macro-F1, confusion."""
        stats, all_right, confusions = {}, None, {}
        for target in self.hparams.targets:
            predictions = torch.cat(self._predictions[target])
            targets = torch.cat(self._targets[target])
            right = predictions == targets
            all_right = right if all_right is None else all_right & right
            num_classes = len(self.hparams.label_encoders[target])
            confusions[target] = confusion_matrix(predictions, targets, num_classes)
            stats[f"macro_f1_{target}" if len(self.hparams.targets) > 1 else "macro_f1"] = macro_f1(confusions[target])
            if len(self.hparams.targets) > 1:
                stats[f"accuracy_{target}"] = float(right.float().mean())
        stats["accuracy"] = float(all_right.float().mean())
        return stats, confusions

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.term_averages()}
            return
        stats, confusions = self.classification_stats()
        stats = {"loss": stage_loss, **stats}
        self.end_evaluation(
            stage,
            epoch,
            stats,
            checkpoint_meta={"accuracy": stats["accuracy"]},
            annealing_metric=1.0 - stats["accuracy"],
        )
        folder = getattr(self.hparams, "output_folder", None)
        if stage == sb.Stage.TEST and folder is not None:
            self._write_confusions(confusions, folder)
            self._write_predictions(folder)

    def _write_confusions(self, confusions, folder):
        for target, confusion in confusions.items():
            labels = [self.hparams.label_encoders[target].ind2lab[i] for i in range(len(confusion))]
            with open(os.path.join(folder, f"confusion_{target}.tsv"), "w") as f:
                f.write("target\\predicted\t" + "\t".join(labels) + "\n")
                for label, row in zip(labels, confusion.tolist()):
                    f.write(label + "\t" + "\t".join(map(str, row)) + "\n")

    def _write_predictions(self, folder):
        # One row per test utterance, for error analysis (which phrasings or voices fail).
        header, columns = ["ID"], [self._ids]
        for target in self.hparams.targets:
            encoder = self.hparams.label_encoders[target]
            header += [target, f"predicted_{target}"]
            columns += [
                encoder.decode_ndim(torch.cat(self._targets[target])),
                encoder.decode_ndim(torch.cat(self._predictions[target])),
            ]
        with open(os.path.join(folder, "predictions.tsv"), "w") as f:
            for row in [header, *zip(*columns)]:
                f.write("\t".join(row) + "\n")
