"""``output_layer: auto``: the hidden state of a pretrained encoder that a frozen probe (or a fine-tuning run)
reads, chosen by LogME on the run's own training set before training.

Each :class:`~speechbrain_xfer.encoders.HFEncoder` of a recipe's ``modules`` built with ``output_layer: auto``
encodes the training items once, frozen, through the feature cache (every hidden state, mean-pooled over
time); LogME scores each hidden state for each of the recipe's ``targets`` (their mean when there are several)
and the best one is selected. The scores are logged and written to ``<output_folder>/output_layer.csv``. The
choice is made from the pretrained weights, so a resumed run makes it again, identically, and it is also the
encoder's buffer ``chosen_layer``, which checkpoints and exports keep.
"""

import csv
import logging
import os

import numpy as np
import torch

from speechbrain_xfer.recipe_config import RecipeConfigError
from speechbrain_xfer.transferability import ESTIMATORS
from speechbrain_xfer.transferability.features import AllHiddenStates, pooled_features, read_labelled_items

logger = logging.getLogger(__name__)

CHOICE_ESTIMATOR = "logme"
"""The estimator that decides (:data:`~speechbrain_xfer.transferability.ESTIMATORS`); the others are logged."""


def auto_layer_encoders(modules):
    """``[(name, HFEncoder)]`` of the modules (and their submodules) built with ``output_layer="auto"``."""
    from speechbrain_xfer.encoders.hf import HFEncoder

    found = []
    for name, module in modules.items():
        for sub_name, sub in module.named_modules():
            if isinstance(sub, HFEncoder) and sub.output_layer == "auto" and not sub.layer_sum:
                found.append((f"{name}.{sub_name}" if sub_name else name, sub))
    return found


def layer_scores(encoder, manifest, targets, cache_root, data_root=None, progress=True):
    """``{estimator: [score of hidden state 0, 1, ...]}`` of a frozen encoder on a manifest's labels.

    With several ``targets`` (label columns), each hidden state's score is the mean over them.
    """
    items, _, _ = read_labelled_items(manifest, targets[0], data_root)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            features = pooled_features(items, (AllHiddenStates(encoder), None, None), cache_root, progress)
    finally:
        encoder.train(was_training)
    scores = {name: np.zeros(features.shape[1]) for name in ESTIMATORS}
    for target in targets:
        _, labels, _ = read_labelled_items(manifest, target, data_root)
        for name, estimator in ESTIMATORS.items():
            scores[name] += [estimator(features[:, layer], labels) / len(targets) for layer in range(features.shape[1])]
    return {name: values.tolist() for name, values in scores.items()}


def choose_output_layers(hparams, progress=True):
    """Selects the hidden state of every ``output_layer: auto`` encoder of a recipe; returns ``{name: layer}``.

    Reads ``modules``, ``train_csv``, ``targets``, ``data_folder``, ``output_folder`` and, where the recipe has
    it, ``feature_cache`` (else ``<save_folder>/layer_choice_cache``).
    """
    encoders = auto_layer_encoders(hparams["modules"])
    if not encoders:
        return {}
    targets = hparams.get("targets")
    if not targets:
        raise RecipeConfigError(
            "output_layer: auto scores the hidden states for class labels, and this recipe has no `targets`: "
            "give output_layer an index (0 = the front end's output, -1 = the last layer)"
        )
    cache_root = hparams.get("feature_cache") or os.path.join(hparams["save_folder"], "layer_choice_cache")
    chosen, rows = {}, []
    for name, encoder in encoders:
        scores = layer_scores(
            encoder, hparams["train_csv"], list(targets), cache_root, hparams["data_folder"], progress
        )
        best = int(np.argmax(scores[CHOICE_ESTIMATOR]))
        encoder.select_output_layer(best)
        chosen[name] = best
        table = ", ".join(f"{layer}: {score:.4g}" for layer, score in enumerate(scores[CHOICE_ESTIMATOR]))
        logger.info(
            "output_layer auto for %s: hidden state %d of %d (%s per hidden state on %s: %s)",
            name,
            best,
            len(scores[CHOICE_ESTIMATOR]) - 1,
            CHOICE_ESTIMATOR,
            hparams["train_csv"],
            table,
        )
        for layer in range(len(scores[CHOICE_ESTIMATOR])):
            row = {"module": name, "layer": layer, **{k: v[layer] for k, v in scores.items()}}
            rows.append({**row, "chosen": layer == best})
    _write_choice(rows, os.path.join(hparams["output_folder"], "output_layer.csv"))
    return chosen


def _write_choice(rows, path):
    import speechbrain as sb

    if not sb.utils.distributed.if_main_process():
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["module", "layer", *ESTIMATORS, "chosen"])
        writer.writeheader()
        writer.writerows(rows)
