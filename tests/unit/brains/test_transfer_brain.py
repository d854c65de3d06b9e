"""TransferBrain: L2-SP anchors through a real checkpoint save and resume."""

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.sampler import ReproducibleRandomSampler

from speechbrain_xfer.data.sampling import LengthGroupedSampler, item_durations


def test_resume_restores_the_pretrained_anchor_not_the_resumed_weights(
    tiny_corpus, tmp_path, small_manifest, make_brain
):
    folder = tiny_corpus[0] / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=1, key="word")
    loader = {"batch_size": 5}

    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, regularizers=True, init_seed=0, epochs=2)
    pretrained = {k: v.clone() for k, v in brain.modules.encoder.state_dict().items() if "conv.weight" in k}
    brain.fit(brain.hparams.epoch_counter, data["train"], data["valid"], loader, loader)
    trained = brain.modules.encoder.blocks[0].conv.weight.detach().clone()
    assert not torch.equal(trained, pretrained["blocks.0.conv.weight"])

    # A new process would rebuild everything from the YAML: here from other
    # initial weights, so that the anchor can only come from the checkpoint.
    resumed, data = make_brain(tmp_path, folder, ["word"], train_csv, regularizers=True, init_seed=1, epochs=2)
    resumed.on_fit_start()
    assert torch.equal(resumed.modules.encoder.blocks[0].conv.weight, trained)
    l2sp = resumed.regularizers["l2sp"]
    anchors = [b for name, b in l2sp.named_buffers() if "blocks__0__conv__weight" in name]
    assert len(anchors) == 1
    assert torch.equal(anchors[0], pretrained["blocks.0.conv.weight"])
    assert float(l2sp()) > 0
    assert resumed.hparams.epoch_counter.current == 2


def test_progress_bar_shows_each_term(tiny_corpus, tmp_path, small_manifest, make_brain, capsys):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=1, key="word")
    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, regularizers=True)
    brain.fit(range(1), data["train"], train_loader_kwargs={"batch_size": 5}, progressbar=True)
    bar = capsys.readouterr().err
    assert "task_loss=" in bar and "R_l2sp=" in bar


@pytest.mark.parametrize(
    ("extra", "loader", "expected", "drawn"),
    [
        ({"steps_per_epoch": 3}, {}, LengthGroupedSampler, 6),  # drawn with replacement: 3 batches of 2
        ({"steps_per_epoch": 3, "length_grouping": 0}, {}, ReproducibleRandomSampler, 6),
        ({}, {"shuffle": True}, LengthGroupedSampler, None),  # a shuffled epoch: each item once
    ],
)
def test_training_batches_are_grouped_by_duration_unless_turned_off(
    tiny_corpus, tmp_path, small_manifest, make_brain, extra, loader, expected, drawn
):
    folder = tiny_corpus[0] / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    items = small_manifest(folder, train_csv, per_class=1, key="word")
    brain, data = make_brain(tmp_path, folder, ["word"], train_csv, extra=extra)
    batches = list(brain.make_dataloader(data["train"], sb.Stage.TRAIN, batch_size=2, **loader))
    assert type(brain.train_sampler) is expected
    assert sum(len(b.id) for b in batches) == (drawn or items)
    if expected is LengthGroupedSampler:
        durations = dict(zip(data["train"].data_ids, item_durations(data["train"])))
        pairs = [batch.id for batch in batches if len(batch.id) == 2]
        assert pairs and all(durations[a] <= durations[b] for a, b in pairs)
