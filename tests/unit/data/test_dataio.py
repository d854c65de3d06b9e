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


def test_audio_at_other_rates_is_resampled_once_and_kept_in_the_cache_folder(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf
    import speechbrain as sb
    import torch

    from speechbrain_xfer.data.dataio import RESAMPLED_FOLDER, read_mono_16k
    from speechbrain_xfer.data.validation import manifest_checks

    data = tmp_path / "data"
    data.mkdir()
    clips = {"phone": 8000, "studio": 48000, "native": 16000}
    for name, rate in clips.items():
        sf.write(data / f"{name}.wav", 0.3 * np.sin(np.arange(rate) * 0.01), rate)
    rows = "".join(f"{name},$data_root/{name}.wav,{name}\n" for name in clips)
    csvs = {}
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.csv").write_text("ID,wav,word\n" + rows)
        csvs[split] = str(tmp_path / f"{split}.csv")
    cache = tmp_path / "cache"
    with manifest_checks(progress=False, cache_folder=str(cache)):
        datasets, _ = classification_datasets(str(data), csvs, ["word"], str(tmp_path / "save"))
    loads = []
    real_load = sb.dataio.audio_io.load
    monkeypatch.setattr(sb.dataio.audio_io, "load", lambda path, **kw: loads.append(path) or real_load(path, **kw))

    first = {item["id"]: item["sig"] for item in datasets["train"]}
    assert sorted(os.path.basename(p) for p in loads) == ["native.wav", "phone.wav", "studio.wav"]
    loads.clear()
    for epoch in range(2):
        again = {item["id"]: item["sig"] for item in datasets["train"]}
        assert [os.path.basename(p) for p in loads] == ["native.wav"] * (epoch + 1)  # the others come from the cache
        assert all(torch.equal(again[name], first[name]) for name in clips)
    kept = sorted(p.name for p in (cache / RESAMPLED_FOLDER).rglob("*.npy"))
    assert len(kept) == 2  # the 16 kHz file is never copied
    for name in clips:
        assert first[name].shape == (16000,) and torch.equal(first[name], read_mono_16k(str(data / f"{name}.wav")))

    sf.write(data / "phone.wav", -0.3 * np.sin(np.arange(8000) * 0.01), 8000)  # changed in place: converted again
    changed = {item["id"]: item["sig"] for item in datasets["train"]}
    assert torch.allclose(changed["phone"], -first["phone"], atol=1e-4)
