"""``sbx rank``: candidate encoders (and their layers) scored on a target task's frozen features, best first.

A candidate is a hub-format encoder (a ``save_pretrained`` folder or a hub id: its every hidden state can be
scored, ``layers="all"``), an ``sbx export`` folder (its encoder's output) or a GE2E ``pretrained_source``
folder (``python -m speechbrain_xfer.encoders.ge2e``: its top LSTM layer). The training items of the target
manifest go once through each candidate's frozen front end and encoder, through the frozen-encoder feature
cache (a second ranking of the same candidates reads the cache), are mean-pooled over time, and each
estimator of :data:`~speechbrain_xfer.transferability.ESTIMATORS` scores the pooled features for the labels.
"""

import csv
import logging
import os
import time

import torch

from speechbrain_xfer.transferability import ESTIMATORS
from speechbrain_xfer.transferability.features import AllHiddenStates, pooled_features, read_labelled_items

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("rank", "candidate", "layer", *ESTIMATORS, "items", "seconds")


def candidate_front_end(source, all_layers, savedir):
    """``(encoder, compute_features, mean_var_norm)`` of a candidate, frozen, in eval mode.

    A folder with ``config.json`` or a hub id is an :class:`~speechbrain_xfer.encoders.hf.HFEncoder`, which
    with ``all_layers`` gives every hidden state; an ``sbx export`` folder is loaded with
    its inference class, and its encoder and front end are taken from it.
    """
    if os.path.isfile(os.path.join(source, "config.json")) or not os.path.isdir(source):
        from speechbrain_xfer.encoders.hf import HFEncoder

        encoder = HFEncoder(source, freeze=True, whisper_window="batch").eval()
        return (AllHiddenStates(encoder) if all_layers else encoder), None, None
    from speechbrain_xfer.encoders.ge2e import GE2EFeatures, load_pretrained_folder

    ge2e = load_pretrained_folder(source)
    if ge2e is not None:
        return ge2e.eval(), GE2EFeatures().eval(), None
    from speechbrain_xfer.hub.loading import load_export

    model = load_export(source, savedir=savedir)
    # EncoderClassifier: embedding_model; EncoderASR: encoder; MultiTargetClassifier: wave_encoder.
    found = [model.mods[name] for name in ("embedding_model", "encoder", "wave_encoder") if name in model.mods]
    wave_encoder = found[0] if found else None
    if wave_encoder is None or not hasattr(wave_encoder, "encoder"):
        raise ValueError(f"{source}: an sbx export whose encoder cannot be found (modules: {list(model.mods)})")
    wave_encoder.eval()
    return wave_encoder.encoder, wave_encoder.compute_features, wave_encoder.mean_var_norm


def rank_candidates(manifest, target, candidates, layers="last", cache_root=None, data_root=None, progress=True):
    """Scores every candidate (and, with ``layers="all"``, each of its hub-format hidden states).

    Returns
    -------
    list of dict
        One row per (candidate, layer) with each estimator's score, the items scored and the seconds the
        candidate took (its model's loading, its encoding and the scoring), sorted by LogME, best first.
    """
    if layers not in ("last", "all"):
        raise ValueError(f"layers={layers!r}: use 'last' or 'all'")
    items, labels, _ = read_labelled_items(manifest, target, data_root)
    cache_root = cache_root or os.path.join(os.path.dirname(os.path.abspath(manifest)), "feature_cache")
    rows = []
    for source in candidates:
        start = time.perf_counter()
        with torch.no_grad():
            front_end = candidate_front_end(source, layers == "all", os.path.join(cache_root, "models"))
            features = pooled_features(items, front_end, cache_root, progress)
        per_layer = [(index, features[:, index]) for index in range(features.shape[1])]
        if features.shape[1] == 1:
            per_layer = [("last", features[:, 0])]
        scored = [{name: estimator(f, labels) for name, estimator in ESTIMATORS.items()} for _, f in per_layer]
        seconds = time.perf_counter() - start
        for (layer, _), scores in zip(per_layer, scored):
            rows.append({"candidate": source, "layer": layer, **scores, "items": len(items), "seconds": seconds})
        logger.info("%s: %d items, %d layer(s) scored in %.1f s", source, len(items), len(per_layer), seconds)
    rows.sort(key=lambda row: -row["logme"])
    for position, row in enumerate(rows, start=1):
        row["rank"] = position
    return rows


def write_rank_csv(rows, path):
    """Writes the ranking as ``rank.csv`` (:data:`CSV_COLUMNS`)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({key: row[key] for key in CSV_COLUMNS} for row in rows)
