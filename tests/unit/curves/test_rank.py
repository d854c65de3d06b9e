"""sbx rank on the tiny corpus's keywords, with tiny hub-format Whisper encoders of random weights."""

import csv
import json
import subprocess
import sys

import pytest

from speechbrain_xfer.curves.rank import CSV_COLUMNS, rank_candidates
from speechbrain_xfer.data.feature_cache import FrozenEncoderCache
from speechbrain_xfer.encoders.hf_folders import write_random_encoder

TINY_WHISPER = dict(d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                    decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)  # fmt: skip


@pytest.fixture(scope="module")
def candidates(tmp_path_factory):
    root = tmp_path_factory.mktemp("candidates")
    return [
        str(write_random_encoder(root / f"seed{seed}", "whisper", seed=seed, config=TINY_WHISPER)) for seed in (1, 2)
    ]


@pytest.fixture
def manifest(tiny_corpus):
    return str(tiny_corpus[0] / "words" / "target" / "train.csv")


def test_every_layer_of_every_candidate_is_scored_and_ranked_by_logme(manifest, candidates, tmp_path):
    rows = rank_candidates(manifest, "word", candidates, layers="all", cache_root=tmp_path, progress=False)
    with open(manifest, newline="") as f:
        items = sum(1 for _ in csv.DictReader(f))
    assert sorted((row["candidate"], row["layer"]) for row in rows) == sorted(
        (c, layer) for c in candidates for layer in range(TINY_WHISPER["encoder_layers"] + 1)
    )
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert [row["logme"] for row in rows] == sorted((row["logme"] for row in rows), reverse=True)
    assert all(row["items"] == items and row["hscore"] >= 0 for row in rows)


def test_a_second_ranking_reads_the_feature_cache(manifest, candidates, tmp_path, monkeypatch):
    first = rank_candidates(manifest, "word", candidates[:1], cache_root=tmp_path, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("encoded again instead of read from the cache")

    monkeypatch.setattr(FrozenEncoderCache, "encode", refuse)
    again = rank_candidates(manifest, "word", candidates[:1], cache_root=tmp_path, progress=False)
    assert [row["logme"] for row in again] == [row["logme"] for row in first]
    assert first[0]["layer"] == "last"


def test_the_command_writes_rank_csv_and_prints_json(manifest, candidates, tmp_path):
    out = tmp_path / "out"
    args = [sys.executable, "-m", "speechbrain_xfer.cli", "rank", manifest, *candidates, "--target", "word"]
    proc = subprocess.run([*args, "--out", str(out), "--cache", str(tmp_path / "cache"), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    with open(out / "rank.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert list(written[0]) == list(CSV_COLUMNS)
    assert [row["candidate"] for row in written] == [row["candidate"] for row in printed]
    assert len(printed) == 2 and {row["candidate"] for row in printed} == set(candidates)


def test_a_label_column_the_manifest_lacks_is_named(manifest, candidates, tmp_path):
    args = [sys.executable, "-m", "speechbrain_xfer.cli", "rank", manifest, candidates[0], "--target", "label"]
    proc = subprocess.run([*args, "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "no column 'label'" in proc.stderr and "--target" in proc.stderr


def test_a_ge2e_folder_is_a_candidate_and_the_ranking_is_checked_against_a_grid(manifest, candidates, tmp_path):
    import torch

    from speechbrain_xfer.encoders.ge2e import GE2EEncoder, load_pretrained_folder

    ge2e = tmp_path / "ge2e"
    ge2e.mkdir()
    tiny = GE2EEncoder(input_dim=40, hidden_size=8, num_layers=2)
    torch.save(tiny.state_dict(), ge2e / "encoder.ckpt")
    loaded = load_pretrained_folder(str(ge2e))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tiny.state_dict().values()))
    assert load_pretrained_folder(candidates[0]) is None  # a hub-format folder is not GE2E's

    sources = [*candidates, str(ge2e)]
    curves = tmp_path / "curves.csv"
    accuracy = {sources[0]: 0.9, sources[1]: 0.5, sources[2]: 0.7}
    lines = ["task,method,shots,seed,metric,value,train_time_s,steps,steps_to_scratch,encoder,source"]
    lines += [
        f"kws,finetune,10,{seed},accuracy,{acc},1.0,10,,conv,{s}" for s, acc in accuracy.items() for seed in (1, 2)
    ]
    lines += ["kws,scratch,10,1,accuracy,0.4,1.0,10,,conv,", f"kws,frozen,3,1,accuracy,0.3,1.0,10,,conv,{sources[0]}"]
    curves.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "speechbrain_xfer.cli", "rank", manifest, *sources, "--target", "word"]
    proc = subprocess.run([*args, "--out", str(out), "--curves", str(curves), "--shots", "10"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "rank.csv", newline="") as f:
        logme = {row["candidate"]: float(row["logme"]) for row in csv.DictReader(f)}
    assert set(logme) == set(sources)
    from scipy.stats import kendalltau

    expected = kendalltau([logme[s] for s in sources], [accuracy[s] for s in sources]).statistic
    table = (out / "rank_vs_curves.md").read_text()
    assert table in proc.stdout
    [finetune] = [line for line in table.splitlines() if line.startswith("| finetune |")]
    assert finetune.endswith(f"| {expected:.2f} |") and "ge2e (" in finetune
    assert "| frozen |" not in table and "| scratch |" not in table  # one candidate, or none: no tau
    [best] = [line for line in table.splitlines() if line.startswith("| best method of each |")]
    assert best.endswith(f"| {expected:.2f} |")  # here each candidate's only method


def test_taus_against_curves_compares_each_method_and_each_candidates_best():
    from speechbrain_xfer.curves.rank_check import BEST_METHOD, taus_against_curves

    ranked = [{"candidate": c, "layer": "last", "logme": score} for c, score in (("a", 0.3), ("b", 0.2), ("c/", 0.1))]
    rows = [
        {"method": method, "shots": "10", "source": source, "value": str(value)}
        for method, source, value in [
            ("finetune", "a", 0.9), ("finetune", "b", 0.5), ("finetune", "c", 0.6),
            ("frozen", "a", 0.2), ("frozen", "c", 0.7),
            ("finetune", "a", 0.1),  # a second seed: a's finetune mean is 0.5
            ("scratch", "", 0.4),  # no source: not a candidate's
        ]
    ]  # fmt: skip
    results = {r["method"]: r for r in taus_against_curves(ranked, rows, shots=10)}
    assert set(results) == {"finetune", "frozen", BEST_METHOD}
    assert [(c, round(acc, 3)) for c, _, acc in results["finetune"]["candidates"]] == [
        ("a", 0.5),
        ("b", 0.5),
        ("c", 0.6),
    ]
    assert results["frozen"]["tau"] is None  # two candidates
    assert [round(acc, 3) for _, _, acc in results[BEST_METHOD]["candidates"]] == [0.5, 0.5, 0.7]
    assert results[BEST_METHOD]["tau"] == pytest.approx(-0.8164965809)  # scipy's tau-b with a tie
