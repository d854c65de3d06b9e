"""Two processes under torchrun with the gloo backend, on CPU: real torch.distributed."""

import os
import subprocess
import sys

import torch

SCRIPT = os.path.join(os.path.dirname(__file__), "ddp_train.py")


def test_two_ranks_with_a_partly_frozen_encoder_end_with_identical_weights(tiny_corpus, tmp_path, small_manifest):
    root, _ = tiny_corpus
    folder = root / "words" / "target"
    train_csv = str(tmp_path / "train.csv")
    small_manifest(folder, train_csv, per_class=2, key="word")  # 20 utterances: 2 steps per epoch per rank
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        SCRIPT,
        str(folder),
        train_csv,
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]

    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["optimizer_step"] == ranks[1]["optimizer_step"] == 4
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), f"{name} differs between ranks"
    for name, value in ranks[0]["anchors"].items():
        assert torch.equal(value, ranks[1]["anchors"][name]), f"L2-SP anchor {name} differs between ranks"
    # The bottom conv block never trained, so it still equals its anchor;
    # the top block did train and moved away from it.
    params, anchors = ranks[0]["params"], ranks[0]["anchors"]
    bottom = "encoder.module.blocks.0.conv.weight"
    top = "encoder.module.blocks.2.conv.weight"
    assert torch.equal(params[bottom], anchors["anchor__blocks__0__conv__weight"])
    assert not torch.equal(params[top], anchors["anchor__blocks__2__conv__weight"])
