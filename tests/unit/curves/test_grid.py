import os
import sys
import time
from pathlib import Path

import pytest

from speechbrain_xfer.curves.demo import (
    DEMO_METHODS,
    DEMO_TASKS,
    HF_SOURCE_STAGES,
    SOURCE_STAGES,
    pretrain,
    source_folders,
    task_sources,
)
from speechbrain_xfer.curves.grid import (
    TASKS,
    Run,
    check_inputs,
    grid,
    parse_shots,
    recipe_methods,
    run_command,
    run_grid,
)

REPO_RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "SynthSpeech"


def test_parse_shots_takes_positive_integers_and_all():
    assert parse_shots("1, 3,10,all") == [1, 3, 10, "all"]


@pytest.mark.parametrize(
    "text, bad", [("0", "'0'"), ("1,-3", "'-3'"), ("1,,3", "''"), ("ten", "'ten'"), ("1.5", "'1.5'"), ("All", "'All'")]
)
def test_parse_shots_names_the_bad_item(text, bad):
    with pytest.raises(ValueError, match=f"--shots takes positive integers or 'all'.*got {bad}"):
        parse_shots(text)


def test_grid_has_every_combination_once():
    runs = grid(["kws", "emotion"], ["scratch", "l2sp"], [1, "all"], [1, 2], "out")
    assert len(runs) == len(set(runs)) == 16
    assert Run("emotion", "l2sp", "all", 2, "out") in runs
    assert runs[0].folder == os.path.join("out", "runs", "kws", "scratch", "k1", "seed1")


def test_run_command_gives_the_k_shot_manifest_seed_and_folder():
    run = Run("kws", "l2sp", 3, 2, "out")
    command = run_command(run, "recipes", "corpus", "pre/encoder", extra_overrides=["--number_of_epochs=2"])
    data, recipe = os.path.join("corpus", "words", "target"), os.path.join("recipes", "KWS")
    assert command == [
        sys.executable,
        os.path.join(recipe, "train.py"),
        os.path.join(recipe, "hparams", "l2sp.yaml"),
        "--data_folder",
        data,
        "--train_csv",
        os.path.join(data, "train_k3.csv"),
        "--valid_csv",
        os.path.join(data, "valid.csv"),
        "--test_csv",
        os.path.join(data, "test.csv"),
        "--seed",
        "2",
        "--output_folder",
        run.folder,
        "--pretrained_source",
        "pre/encoder",
        "--number_of_epochs=2",
    ]


def test_task_sources_give_some_tasks_another_pretrained_source():
    sources = {"kws": "words/encoder"}
    kws = run_command(Run("kws", "frozen", 1, 1, "out"), "recipes", "corpus", "pre/encoder", task_sources=sources)
    intent = run_command(Run("intent", "frozen", 1, 1, "out"), "recipes", "corpus", "pre/encoder", task_sources=sources)
    assert kws[kws.index("--pretrained_source") + 1] == "words/encoder"
    assert intent[intent.index("--pretrained_source") + 1] == "pre/encoder"


def test_a_grid_mixing_encoders_gives_each_method_its_encoder_source():
    sources = {"": "words/encoder", "ge2e": "ge2e", "hf": "hf/encoder"}

    def source(method, task="intent", task_sources=None):
        command = run_command(Run(task, method, 1, 1, "out"), "r", "c", sources, task_sources=task_sources)
        return command[command.index("--pretrained_source") + 1] if "--pretrained_source" in command else None

    assert [source(m) for m in ("scratch", "l2sp", "ge2e_layer_decay", "hf_scratch", "hf_lora")] == [
        None,
        "words/encoder",
        "ge2e",
        "hf/encoder",  # hf_scratch: its architecture
        "hf/encoder",
    ]
    assert source("finetune", "kws", {"kws": "kws/encoder"}) == "kws/encoder"  # a task's own ConvEncoder stage
    assert source("ge2e_finetune", "kws", {"kws": "kws/encoder"}) == "ge2e"
    assert recipe_methods(["finetune", "ge2e_frozen"], "ge2e") == ["ge2e_finetune", "ge2e_frozen"]
    assert [Run("t", m, 1, 1, "o").base_method for m in ("ge2e_l2sp", "hf_lora", "lora")] == ["l2sp", "lora", "lora"]


def test_demo_keyword_runs_start_from_the_source_words_stage():
    folders = source_folders("out")
    assert task_sources("out", DEMO_TASKS) == {"kws": folders["words"]}
    assert folders[""] == os.path.join("out", "pretrain", "encoder")
    assert folders["words"] == os.path.join("out", "pretrain", "words", "encoder")


def test_run_command_of_scratch_has_no_pretrained_source_and_all_shots_take_the_full_manifest():
    command = run_command(Run("emotion", "scratch", "all", 1, "out"), "recipes", "corpus", "pre/encoder")
    assert "--pretrained_source" not in command and "pre/encoder" not in command
    assert command[command.index("--train_csv") + 1] == os.path.join("corpus", "emotion", "train.csv")


def make_inputs(root, files):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def test_check_inputs_names_every_missing_file(tmp_path):
    recipes, corpus = tmp_path / "recipes", tmp_path / "corpus"
    make_inputs(recipes, ["KWS/train.py", "KWS/hparams/scratch.yaml"])
    make_inputs(corpus, ["words/target/train_k1.csv"])
    check_inputs(grid(["kws"], ["scratch"], [1], [1, 2], "out"), str(recipes), str(corpus))

    runs = grid(["kws", "intent"], ["scratch", "lora"], [1, 7], [1], "out")
    with pytest.raises(FileNotFoundError) as info:
        check_inputs(runs, str(recipes), str(corpus))
    message = str(info.value)
    expected = [
        recipes / "KWS/hparams/lora.yaml",
        recipes / "intent/train.py",
        recipes / "intent/hparams/scratch.yaml",
        recipes / "intent/hparams/lora.yaml",
        corpus / "words/target/train_k7.csv",
        corpus / "intent/train_k1.csv",
        corpus / "intent/train_k7.csv",
    ]
    assert sorted(message.splitlines()[1:]) == sorted(f"  {path}" for path in expected)  # each once


def test_the_demo_grid_exists_in_the_repository(tmp_path):
    corpus = tmp_path / "corpus"
    make_inputs(corpus, [f"{TASKS[t].corpus}/train_k{k}.csv" for t in DEMO_TASKS for k in (1, 3, 10)])
    check_inputs(grid(DEMO_TASKS, DEMO_METHODS, [1, 3, 10], [1], "out"), str(REPO_RECIPES), str(corpus))


FAKE_RECIPE = """import json, os, sys
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
os.makedirs(args["--output_folder"], exist_ok=True)
print("ran", os.path.basename(sys.argv[1]), args["--seed"])
if "broken" in sys.argv[1]:
    sys.exit(3)
with open(os.path.join(args["--output_folder"], "summary.json"), "w") as f:
    json.dump({"pretrained": args.get("--pretrained_source")}, f)
"""


def test_run_grid_runs_only_the_pending_runs_and_reports_the_failed_ones(tmp_path):
    recipes, corpus, out = tmp_path / "recipes", tmp_path / "corpus", str(tmp_path / "out")
    make_inputs(recipes, ["KWS/hparams/scratch.yaml", "KWS/hparams/l2sp.yaml", "KWS/hparams/broken.yaml"])
    (recipes / "KWS" / "train.py").write_text(FAKE_RECIPE)
    runs = grid(["kws"], ["scratch", "l2sp", "broken"], [1], [1], out)
    done = Run("kws", "l2sp", 1, 1, out)
    os.makedirs(done.folder)
    Path(done.summary_path).write_text("{}")

    failed = run_grid(runs, str(recipes), str(corpus), "pre", jobs=2, progress=False)
    assert failed == [Run("kws", "broken", 1, 1, out)]
    assert Path(done.summary_path).read_text() == "{}"  # not run again
    assert not os.path.exists(os.path.join(done.folder, "log.txt"))
    scratch = Run("kws", "scratch", 1, 1, out)
    assert Path(scratch.folder, "log.txt").read_text() == "ran scratch.yaml 1\n"
    assert Path(failed[0].folder, "log.txt").read_text() == "ran broken.yaml 1\n"


def test_run_grid_runs_scratch_beside_the_work_that_makes_the_encoder(tmp_path):
    recipes, corpus, out = tmp_path / "recipes", tmp_path / "corpus", str(tmp_path / "out")
    make_inputs(recipes, ["KWS/hparams/scratch.yaml", "KWS/hparams/l2sp.yaml"])
    (recipes / "KWS" / "train.py").write_text(FAKE_RECIPE)
    runs = grid(["kws"], ["scratch", "l2sp"], [1, 3], [1], out)
    scratch = [r for r in runs if r.method == "scratch"]
    transfer = [r for r in runs if r.method == "l2sp"]

    def pretrain():
        # Both scratch runs finish on the other worker while this one is busy; no transfer run has started.
        deadline = time.monotonic() + 120
        while not all(os.path.isfile(r.summary_path) for r in scratch):
            assert time.monotonic() < deadline, "the scratch runs did not run beside the pretraining"
            time.sleep(0.05)
        assert not any(os.path.exists(r.folder) for r in transfer)

    assert run_grid(runs, str(recipes), str(corpus), "pre", jobs=2, progress=False, before=pretrain) == []
    assert all(os.path.isfile(r.summary_path) for r in runs)


def test_run_grid_stops_before_the_transfer_runs_when_the_pretraining_fails(tmp_path):
    recipes, corpus, out = tmp_path / "recipes", tmp_path / "corpus", str(tmp_path / "out")
    make_inputs(recipes, ["KWS/hparams/scratch.yaml", "KWS/hparams/l2sp.yaml"])
    (recipes / "KWS" / "train.py").write_text(FAKE_RECIPE)
    runs = grid(["kws"], ["scratch", "l2sp"], [1], [1], out)

    def pretrain():
        raise RuntimeError("pretraining failed (exit 1)")

    with pytest.raises(RuntimeError, match="pretraining failed"):
        run_grid(runs, str(recipes), str(corpus), "pre", jobs=2, progress=False, before=pretrain)
    assert not os.path.exists(Run("kws", "l2sp", 1, 1, out).folder)


FAKE_SOURCE_STAGE = """import os, sys
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
print("ran", os.path.basename(sys.argv[0]), "from", args.get("--pretrained_source"), "on", args["--data_folder"])
os.makedirs(args["--export_folder"], exist_ok=True)
open(os.path.join(args["--export_folder"], "encoder.ckpt"), "w").close()
"""


def test_demo_source_stages_run_in_order_each_from_the_one_before_and_only_once(tmp_path):
    recipes, out = tmp_path / "recipes", tmp_path / "out"
    for _, script, yaml, _ in SOURCE_STAGES:
        make_inputs(recipes, [f"pretrain/hparams/{yaml}"])
        (recipes / "pretrain" / script).write_text(FAKE_SOURCE_STAGE)
    folders = source_folders(str(out))
    assert pretrain(str(out), "corpus", str(recipes)) == folders
    first = (out / "pretrain" / "log.txt").read_text()
    second = (out / "pretrain" / "words" / "log.txt").read_text()
    assert first.startswith(f"ran train.py from None on {os.path.join('corpus', 'asr', 'source')}")
    assert second.startswith(f"ran train_words.py from {folders['']} on {os.path.join('corpus', 'words', 'source')}")
    assert all(os.path.isfile(os.path.join(folder, "encoder.ckpt")) for folder in folders.values())
    pretrain(str(out), "corpus", str(recipes))  # both exports exist: nothing runs again
    assert (out / "pretrain" / "log.txt").read_text() == first
    assert (out / "pretrain" / "words" / "log.txt").read_text() == second


def test_hf_encoder_runs_take_the_hf_yamls_and_the_hf_source_for_every_method():
    from speechbrain_xfer.curves.grid import recipe_methods

    methods = recipe_methods(["scratch", "finetune", "hf_lora"], "hf")
    assert methods == ["hf_scratch", "hf_finetune", "hf_lora"]
    assert recipe_methods(["scratch"], "conv") == ["scratch"]
    with pytest.raises(ValueError, match="encoder 'w2v'"):
        recipe_methods(["scratch"], "w2v")
    sources = {"kws": "words/encoder"}  # the ConvEncoder's later source stage: not the hub-format encoder's
    for method in methods:
        run = Run("kws", method, 1, 1, "out")
        assert run.encoder == "hf" and run.base_method == method.removeprefix("hf_")
        command = run_command(run, "recipes", "corpus", "pre/hf", task_sources=sources)
        assert command[2] == os.path.join("recipes", "KWS", "hparams", f"{method}.yaml")
        # hf_scratch too: the source gives the architecture that trains from random weights.
        assert command[command.index("--pretrained_source") + 1] == "pre/hf"
        assert run.folder == os.path.join("out", "runs", "kws", method, "k1", "seed1")
    assert Run("kws", "finetune", 1, 1, "out").encoder == "conv"


def test_hf_demo_stages_distill_the_first_stage_into_the_hub_format_encoder(tmp_path):
    recipes, out = tmp_path / "recipes", tmp_path / "out"
    for _, script, yaml, _ in HF_SOURCE_STAGES:
        make_inputs(recipes, [f"pretrain/hparams/{yaml}"])
        (recipes / "pretrain" / script).write_text(FAKE_SOURCE_STAGE)
    folders = pretrain(str(out), "corpus", str(recipes), stages=HF_SOURCE_STAGES)
    assert set(folders) == {"", "hf"}
    log = (out / "pretrain" / "hf" / "log.txt").read_text()
    assert log.startswith(f"ran train.py from {folders['']} on {os.path.join('corpus', 'asr', 'source')}")
    assert not (out / "pretrain" / "words").exists(), "the source-words stage is the ConvEncoder's keyword source"


# -- targets: any recipe on a folder with train.csv, valid.csv and test.csv --------------------------------------

KWS_RECIPE = str(REPO_RECIPES / "KWS")


def write_manifests(folder, labels_per_split):
    folder.mkdir(parents=True, exist_ok=True)
    for split, labels in labels_per_split.items():
        lines = ["ID,wav,word"] + [f"{split}{i},$data_root/{split}{i}.wav,{label}" for i, label in enumerate(labels)]
        (folder / f"{split}.csv").write_text("\n".join(lines) + "\n")


def test_a_data_target_reads_its_labels_from_the_recipe_and_keeps_its_subsets_in_the_output_folder(tmp_path):
    from speechbrain_xfer.curves.grid import data_target

    data = tmp_path / "mine"
    write_manifests(data, {"train": "abcabcabc", "valid": "abc", "test": "abc"})
    target = data_target(KWS_RECIPE, str(data), ["finetune"], [1, 2], str(tmp_path / "out"))
    assert (target.name, target.subset, target.labels) == ("mine", "k", ("word",))
    assert target.subsets == str(tmp_path / "out" / "subsets" / "mine")
    assert target.train_csv(2) == os.path.join(target.subsets, "train_k2.csv")
    assert target.train_csv("all") == str(data / "train.csv")


def test_a_data_folder_holding_the_k_shot_lists_is_read_as_it_is(tmp_path):
    from speechbrain_xfer.curves.grid import data_target

    data = tmp_path / "mine"
    write_manifests(data, {"train": "ab", "valid": "ab", "test": "ab"})
    make_inputs(data, ["train_k1.csv"])
    assert data_target(KWS_RECIPE, str(data), ["l2sp"], [1], "out").subsets == str(data)
    assert data_target(KWS_RECIPE, str(data), ["l2sp"], [1, 3], "out").subsets == os.path.join("out", "subsets", "mine")


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("folder", "--data-folder .*mine: no such folder"),
        ("valid.csv", "no valid.csv; the folder needs train.csv, valid.csv and test.csv"),
        ("yaml", "no hparams/nomethod.yaml"),
    ],
)
def test_a_data_target_names_what_is_missing(tmp_path, missing, message):
    from speechbrain_xfer.curves.grid import GridInputError, data_target

    data = tmp_path / "mine"
    if missing != "folder":
        write_manifests(data, {"train": "ab", "valid": "ab", "test": "ab"})
    if missing == "valid.csv":
        (data / "valid.csv").unlink()
    method = "nomethod" if missing == "yaml" else "scratch"
    with pytest.raises(GridInputError, match=message):
        data_target(KWS_RECIPE, str(data), [method], [1], str(tmp_path / "out"))


def test_prepare_subsets_draws_nested_stratified_lists_once(tmp_path):
    from speechbrain_xfer.curves.grid import data_target, prepare_subsets

    data, out = tmp_path / "mine", str(tmp_path / "out")
    write_manifests(data, {"train": "aaaabbbbcccc", "valid": "abc", "test": "abc"})
    target = data_target(KWS_RECIPE, str(data), ["scratch"], [1, 3], out)
    runs = grid([target], ["scratch", "finetune"], [1, 3], [1, 2], out)
    prepare_subsets(runs)
    chosen = {}
    for k in (1, 3):
        lines = Path(target.train_csv(k)).read_text().splitlines()
        assert lines[0] == "ID,wav,word"
        assert sorted(line.rsplit(",", 1)[1] for line in lines[1:]) == sorted("abc" * k)
        chosen[k] = set(lines[1:])
    assert chosen[1] < chosen[3]
    mtime = os.path.getmtime(target.train_csv(3))
    prepare_subsets(runs)  # drawn already: not again
    assert os.path.getmtime(target.train_csv(3)) == mtime
    assert sorted(os.listdir(data)) == ["test.csv", "train.csv", "valid.csv"]


def test_run_command_of_a_data_target_gives_its_subset_and_a_cache_folder_per_target(tmp_path):
    from speechbrain_xfer.curves.grid import data_target

    data = tmp_path / "mine"
    write_manifests(data, {"train": "ab", "valid": "ab", "test": "ab"})
    target = data_target(KWS_RECIPE, str(data), ["l2sp"], [1], "out")
    (run,) = grid([target], ["l2sp"], [1], [1], "out")
    command = run_command(run, None, None, "pre/encoder", cache="out/cache")
    assert command[1:3] == [os.path.join(KWS_RECIPE, "train.py"), os.path.join(KWS_RECIPE, "hparams", "l2sp.yaml")]
    assert command[command.index("--data_folder") + 1] == str(data)
    assert command[command.index("--train_csv") + 1] == target.train_csv(1)
    assert command[command.index("--cache_folder") + 1] == os.path.join("out", "cache", "mine")
    assert run.folder == os.path.join("out", "runs", "mine", "l2sp", "k1", "seed1")
