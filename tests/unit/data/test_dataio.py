"""The datasets the recipes read: evaluation splits in duration order, training split as written."""

import os

from speechbrain_xfer.data.dataio import classification_datasets
from speechbrain_xfer.synthspeech.synth import read_manifest


def test_valid_and_test_are_sorted_by_duration_and_train_keeps_its_order(tiny_corpus, tmp_path):
    folder = tiny_corpus[0] / "intent"  # sentences: each its own duration
    csvs = {split: os.path.join(folder, f"{split}.csv") for split in ("train", "valid", "test")}
    datasets, _ = classification_datasets(str(folder), csvs, ["action"], str(tmp_path / "save"))
    for split, path in csvs.items():
        rows = read_manifest(path)
        ids = list(datasets[split].data_ids)
        assert sorted(ids) == sorted(r["ID"] for r in rows)
        if split == "train":
            assert ids == [r["ID"] for r in rows]
        else:
            durations = [float(datasets[split].data[i]["duration"]) for i in ids]
            assert durations == sorted(durations) and ids != [r["ID"] for r in rows]
