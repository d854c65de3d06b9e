"""UtteranceClassifierBrain on SynthSpeech audio: real SpeechBrain training loops."""

import pytest
import speechbrain as sb
import torch

from speechbrain_xfer.data.dataio import ManifestError, classification_datasets
from speechbrain_xfer.synthspeech.synth import read_manifest, write_manifest


def test_keyword_brain_overfits_a_handful_of_utterances(tiny_corpus, tmp_path, small_manifest, make_brain):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    assert small_manifest(folder, train_csv, per_class=2, key="word") == 20
    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, regularizers=True)
    loader = {"batch_size": 10, "shuffle": True}
    brain.fit(range(40), data["train"], data["valid"], train_loader_kwargs=loader, valid_loader_kwargs=loader)
    brain.evaluate(data["test"], test_loader_kwargs={"batch_size": 10})
    # Chance is ln(10) = 2.3 and 10 %; a broken model or loss cannot get here.
    assert brain.train_stats["task_loss"] < 0.1
    assert brain.test_stats["accuracy"] == 1.0
    assert brain.test_stats["macro_f1"] == 1.0
    # Each term of the objective is logged, and R is > 0 once the weights moved.
    assert set(brain.train_stats) == {"loss", "task_loss", "R_l2sp"}
    assert brain.train_stats["R_l2sp"] > 0


def test_three_slot_intent_brain_overfits(tiny_corpus, tmp_path, small_manifest, make_brain):
    root, _ = tiny_corpus
    folder = root / "intent"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=1, key="intent")
    brain, data = make_brain(tmp_path, folder, ["action", "object", "location"], train_csv)
    loader = {"batch_size": 16, "shuffle": True}
    brain.fit(range(60), data["train"], data["valid"], train_loader_kwargs=loader, valid_loader_kwargs=loader)
    brain.evaluate(data["test"], test_loader_kwargs={"batch_size": 16})
    assert brain.test_stats["accuracy"] >= 0.9
    assert {"accuracy_action", "accuracy_object", "accuracy_location"} <= set(brain.test_stats)


def test_encoder_frozen_for_the_first_steps(tiny_corpus, tmp_path, small_manifest, make_brain):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=1, key="word")
    extra = {
        "freeze_encoder_steps": 2,
        "encoder_opt_class": lambda groups: torch.optim.SGD(groups, lr=0.1),
        "encoder_lr": 0.1,
        "layer_decay": 0.5,
    }
    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, extra=extra)
    start = {k: v.clone() for k, v in brain.modules.encoder.state_dict().items()}
    loader = {"batch_size": 5}  # 10 utterances: 2 steps an epoch
    brain.fit(range(1), data["train"], train_loader_kwargs=loader)
    after_frozen = brain.modules.encoder.state_dict()
    assert all(torch.equal(start[k], after_frozen[k]) for k in start), "the encoder moved while frozen"
    assert [g["lr"] for g in brain.encoder_optimizer.param_groups] == [0.05, 0.1]
    brain.fit(range(2), data["train"], train_loader_kwargs=loader)
    moved = brain.modules.encoder.blocks[0].conv.weight
    assert not torch.equal(start["blocks.0.conv.weight"], moved)


def test_gradient_clipping_covers_every_group(tiny_corpus, tmp_path, small_manifest, make_brain):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=1, key="word")
    extra = {"encoder_opt_class": lambda groups: torch.optim.SGD(groups, lr=0.0), "encoder_lr": 0.0, "layer_decay": 0.5}
    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, extra=extra)
    brain.max_grad_norm = 1e-3
    brain.on_fit_start()
    norms = []
    original_step = brain.encoder_optimizer.step

    def record_then_step(*args, **kwargs):
        for group in brain.encoder_optimizer.param_groups:
            grads = [p.grad.norm() for p in group["params"] if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))
        return original_step(*args, **kwargs)

    brain.encoder_optimizer.step = record_then_step
    batch = next(iter(sb.dataio.dataloader.make_dataloader(data["train"], batch_size=10)))
    brain.fit_batch(batch)
    assert len(norms) == 2 and all(n <= 1e-3 * 1.01 for n in norms), norms


def test_label_missing_from_training_is_a_clear_error(tiny_corpus, tmp_path):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    rows = read_manifest(folder / "train.csv")
    write_manifest(tmp_path / "train.csv", [r for r in rows if r["word"] != "stop"])
    csvs = {"train": str(tmp_path / "train.csv"), "test": str(folder / "test.csv")}
    with pytest.raises(ManifestError, match=r"test.csv: \d+ word labels never seen in training"):
        classification_datasets(str(folder), csvs, ["word"], str(tmp_path / "save"))
    with pytest.raises(ManifestError, match="has no column 'emotion'"):
        classification_datasets(str(folder), csvs, ["emotion"], str(tmp_path / "save"))
