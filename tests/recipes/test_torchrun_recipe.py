"""The KWS recipe under torchrun, 2 processes with gloo on CPU: a partly frozen encoder and L2-SP, against the same
recipe in one process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from recipe_runs import RECIPE_ENV, RECIPES

pytestmark = pytest.mark.slow

DRIVER = os.path.join(os.path.dirname(__file__), "recipe_rank_driver.py")
STEPS_PER_EPOCH, EPOCHS, GLOBAL_BATCH = 5, 4, 8
# Steps 0-3: encoder frozen; 4-9: its top layer trains; 10-15: the top two; 16-19: three. The bottom block never
# trains.
SCHEDULE = ("--freeze_encoder_steps", 4, "--unfreeze_every", 6)
# The stated parity: test loss within 2 %, accuracy within 0.15, and the two runs' encoders closer to each other
# than to where they started.
LOSS_TOLERANCE, ACCURACY_TOLERANCE, WEIGHT_TOLERANCE = 0.02, 0.15, 1.0


@pytest.fixture(scope="module")
def runs(tiny_corpus, pretrained_encoder, small_manifest, tmp_path_factory):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    work = tmp_path_factory.mktemp("torchrun")
    train_csv = work / "train.csv"
    small_manifest(folder, train_csv, per_class=2, key="word")
    common = [
        "train.py",
        "hparams/l2sp.yaml",
        "--data_folder",
        folder,
        "--train_csv",
        train_csv,
        "--pretrained_source",
        pretrained_encoder,
        "--number_of_epochs",
        EPOCHS,
        "--steps_per_epoch",
        STEPS_PER_EPOCH,
        *SCHEDULE,
        "--noprogressbar",
    ]
    results = {}
    for name, launcher, batch in (
        ("ddp", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"], 4),
        ("single", [sys.executable], GLOBAL_BATCH),
    ):
        out = work / name
        out.mkdir()
        extra = ["--distributed_backend=gloo"] if name == "ddp" else []
        command = [
            *launcher,
            DRIVER,
            out,
            RECIPES / "KWS",
            *common,
            "--output_folder",
            out / "run",
            "--batch_size",
            batch,
            *extra,
        ]
        result = subprocess.run(list(map(str, command)), env=RECIPE_ENV, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-4000:]
        results[name] = out
    return results, pretrained_encoder


def test_both_ranks_end_with_identical_weights_and_anchors(runs):
    folders, _ = runs
    ranks = [torch.load(folders["ddp"] / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["optimizer_step"] == ranks[1]["optimizer_step"] == STEPS_PER_EPOCH * EPOCHS
    for key in ("params", "anchors"):
        assert ranks[0][key].keys() == ranks[1][key].keys()
        for name, value in ranks[0][key].items():
            assert torch.equal(value, ranks[1][key][name]), f"{key} {name} differs between ranks"


def test_each_rank_joined_the_gloo_threads_before_the_interpreter_exits(runs):
    """A gloo worker thread still alive when the interpreter finalizes can abort the rank after a finished run
    (it frees the last collective's tensors, which takes the GIL); this failed about one run in 15 on a loaded
    machine. run_experiment's exit handler joins them; the driver lists the threads left after it."""
    folders, _ = runs
    for rank in (0, 1):
        listing = folders["ddp"] / f"threads_at_exit_rank{rank}.txt"
        if not listing.exists():
            pytest.skip("no /proc/self/task on this system")
        assert "pt_gloo_runloop" not in listing.read_text().split(), listing.read_text()


def test_the_anchors_are_the_pretrained_weights_and_the_bottom_block_stayed_frozen(runs):
    folders, pretrained_encoder = runs
    pretrained = torch.load(pretrained_encoder / "encoder.ckpt", weights_only=True)
    rank0 = torch.load(folders["ddp"] / "rank0.pt", weights_only=True)
    anchors = {
        k.removeprefix("anchor__").replace("__", "."): v
        for k, v in rank0["anchors"].items()
        if k.startswith("anchor__")
    }
    assert anchors and all(torch.equal(value, pretrained[name]) for name, value in anchors.items())
    params = rank0["params"]
    assert torch.equal(params["encoder.module.blocks.0.conv.weight"], pretrained["blocks.0.conv.weight"])
    assert not torch.equal(params["encoder.module.blocks.2.conv.weight"], pretrained["blocks.2.conv.weight"])


def test_two_processes_match_one_with_the_same_global_batch(runs, capsys):
    """Not bit-equal: each rank normalizes its batch norm over its own 4 utterances and draws its own dropout masks.
    Measured when written: test loss 2.2976 / 2.2986 (2 processes / 1), accuracy 0.133 / 0.133, and the encoders 0.74
    as far apart as training moved them."""
    folders, _ = runs
    summaries = {name: json.loads((folder / "run" / "summary.json").read_text()) for name, folder in folders.items()}
    assert summaries["ddp"]["steps"] == summaries["single"]["steps"] == STEPS_PER_EPOCH * EPOCHS
    tests = {name: summary["test"] for name, summary in summaries.items()}
    assert abs(tests["ddp"]["loss"] - tests["single"]["loss"]) <= LOSS_TOLERANCE * tests["single"]["loss"]
    assert abs(tests["ddp"]["accuracy"] - tests["single"]["accuracy"]) <= ACCURACY_TOLERANCE
    params = {n: torch.load(folders[n] / "rank0.pt", weights_only=True)["params"] for n in folders}
    anchors = torch.load(folders["single"] / "rank0.pt", weights_only=True)["anchors"]
    start = {k.removeprefix("anchor__").replace("__", "."): v for k, v in anchors.items() if k.startswith("anchor__")}
    apart = moved = 0.0
    for name, value in start.items():
        single, ddp = params["single"][f"encoder.{name}"], params["ddp"][f"encoder.module.{name}"]
        apart += float((ddp - single).pow(2).sum())
        moved += float((single - value).pow(2).sum())
    with capsys.disabled():
        print(
            f"\ntorchrun parity: test loss {tests['ddp']['loss']:.4f} (2 processes) / {tests['single']['loss']:.4f} "
            f"(1), accuracy {tests['ddp']['accuracy']:.3f} / {tests['single']['accuracy']:.3f}, encoder weights "
            f"apart / moved {(apart / moved) ** 0.5:.2f}"
        )
    assert moved > 0 and (apart / moved) ** 0.5 <= WEIGHT_TOLERANCE
