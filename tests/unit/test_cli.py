import subprocess
import sys

from speechbrain_xfer.cli import main
from speechbrain_xfer.synthspeech.synth import read_manifest


def test_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "speechbrain_xfer.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "synth" in out and "demo" in out


def test_synth_writes_a_task_corpus(tmp_path, capsys):
    assert (
        main(["synth", "--task", "kws", "--out", str(tmp_path), "--speakers", "4", "--scale", "0.1", "--jobs", "2"])
        == 0
    )
    assert "words/target" in capsys.readouterr().out
    rows = read_manifest(tmp_path / "words" / "target" / "test.csv")
    assert {row["word"] for row in rows} == {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"}


def test_budget_reads_finished_grids_and_checks_the_fit(tmp_path, capsys):
    import csv

    from speechbrain_xfer.curves.budget import power_law

    path = tmp_path / "curves.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["task", "method", "shots", "seed", "metric", "value", "encoder"])
        writer.writeheader()
        for shots in (1, 3, 10, 30):
            value = round(float(power_law(shots, 95.0, 60.0, 0.5)) / 100, 6)
            writer.writerow({"task": "kws", "method": "l2sp", "shots": shots, "seed": 1, "metric": "accuracy",
                             "value": value, "encoder": "conv"})  # fmt: skip
    assert main(["budget", str(path), "--target", "90", "--holdout"]) == 0
    out = capsys.readouterr().out
    assert "### Labels needed for 90 % (clips per class)" in out
    assert "| kws | l2sp | about 144 |" in out
    assert "| kws | l2sp | 1,3,10 | 30 |" in out


def test_budget_names_a_missing_file(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="sbx budget: no such file: .*nothing.csv"):
        main(["budget", str(tmp_path / "nothing.csv")])


def test_curve_with_both_task_and_recipe_is_refused(tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="give --task .* or --recipe .*, not both"):
        main(["curve", "--task", "kws", "--recipe", "recipes/SynthSpeech/KWS", "--data", str(tmp_path)])


def test_curve_takes_a_pretrained_source_per_encoder_and_names_a_missing_one(tmp_path):
    import pytest

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"{split}.csv").write_text("ID,duration,wav,word\n" + "".join(f"{w},1.0,x.wav,{w}\n" for w in "ab"))
    words = tmp_path / "words"
    words.mkdir()
    (words / "encoder.ckpt").write_bytes(b"")
    common = [
        "curve",
        "--recipe",
        "recipes/FSDD/KWS",
        "--data",
        str(data),
        "--shots",
        "1",
        "--out",
        str(tmp_path / "o"),
    ]
    with pytest.raises(SystemExit, match=r"no pretrained encoder at .*nowhere \(encoder.ckpt\) for ge2e_frozen.*ge2e="):
        main([*common, "--methods", "finetune,ge2e_frozen", "--pretrained", str(words), "--pretrained", "ge2e=nowhere"])
    with pytest.raises(SystemExit, match="'gee2e' is not one of conv, hf, ge2e"):
        main([*common, "--methods", "finetune", "--pretrained", "gee2e=somewhere"])


def test_every_command_has_its_own_module_and_its_help_ends_with_a_runnable_example(capsys):
    import argparse

    import pytest

    from speechbrain_xfer.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"synth", "curve", "budget", "tune", "rank", "rank-check", "demo", "export", "push"} <= set(commands)
    for name, sub in commands.items():
        assert sub.get_default("func").__module__.startswith("speechbrain_xfer.cli."), name
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        example = text.rsplit("example:\n", 1)[-1]
        assert "example:\n  sbx " + name + " " in text and example.strip().startswith(f"sbx {name} "), name


def test_the_old_spellings_still_work_and_warn(caplog):
    import logging

    from speechbrain_xfer.cli import build_parser
    from speechbrain_xfer.cli.common import seeds

    caplog.set_level(logging.WARNING, logger="speechbrain_xfer")
    old = build_parser().parse_args(["curve", "--pretrained", "a", "--pretrained", "ge2e=b", "--pretrained-kws", "w"])
    new = build_parser().parse_args(["curve", "--pretrained-source", "a", "--pretrained-source", "ge2e=b"])
    assert old.pretrained == new.pretrained == ["a", "ge2e=b"] and old.pretrained_kws == "w"
    assert new.pretrained_kws == "results/demo/pretrain/words/encoder"  # the default, untouched by the old option
    warned = [r.getMessage() for r in caplog.records]
    assert "--pretrained is now --pretrained-source; the old spelling works until the next release" in warned
    assert any(m.startswith("--pretrained-kws is now --pretrained-source-kws") for m in warned)
    assert seeds("3") == [1, 2, 3] and seeds("2,5") == [2, 5]  # a count or a list, for every command
    assert build_parser().parse_args(["rank-check", "c=x", "--seeds", "1,2"]).seeds == "1,2"
    assert build_parser().parse_args(["curve", "--data", "d"]).data == "d"  # now --data-folder
    assert build_parser().parse_args(["rank-check", "c=x", "--data", "d"]).data == "d"
    assert "--data is now --data-folder; the old spelling works until the next release" in caplog.messages
