"""CTCBrain on SynthSpeech ASR audio: real SpeechBrain training loops on CPU."""

import logging
import math

import pytest
import speechbrain as sb
import torch
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import RandAmp
from speechbrain.lobes.features import Fbank
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_xfer.brains import CTCBrain
from speechbrain_xfer.data.dataio import ManifestError, asr_datasets
from speechbrain_xfer.data.tokenizers import CharTokenizer
from speechbrain_xfer.encoders import PretrainedSourceError
from speechbrain_xfer.encoders.conv import ConvEncoder
from speechbrain_xfer.lobes import CTCHead
from speechbrain_xfer.regularization import L2SP
from speechbrain_xfer.synthspeech.synth import read_manifest, write_manifest

N_UTTERANCES = 8
LOADER = {"batch_size": 4, "shuffle": True}


def eval_loader():
    # A fresh dict each time: Brain.evaluate adds ckpt_prefix to the one it is given, which
    # Brain.fit then refuses as valid_loader_kwargs.
    return {"batch_size": N_UTTERANCES}


class LossTrackingCTCBrain(CTCBrain):
    """Keeps every epoch's training stats, to see the loss fall."""

    def on_stage_end(self, stage, stage_loss, epoch=None):
        super().on_stage_end(stage, stage_loss, epoch)
        if stage == sb.Stage.TRAIN:
            self.history = [*getattr(self, "history", []), self.train_stats]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Runs these small models on one thread: on a busy machine, two threads that wait for
    each other at every GRU step made a 4 s test take minutes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_asr_manifest(corpus_root, out_folder):
    """The first 8 training utterances of the ASR target domain, as train, valid and test set."""
    folder = corpus_root / "asr" / "target"
    train_csv = str(out_folder / "train.csv")
    write_manifest(train_csv, read_manifest(str(folder / "train.csv"))[:N_UTTERANCES])
    return folder, {"train": train_csv, "valid": train_csv, "test": train_csv}


@pytest.fixture
def asr_manifest(tiny_corpus, tmp_path):
    return small_asr_manifest(tiny_corpus[0], tmp_path)


def ctc_brain(folder, csvs, save, tokenizer="char", vocab_size=None, hparams=None, checkpointer=False, strides=(2, 1)):
    data, tok = asr_datasets(str(folder), csvs, str(save / "tokenizer"), tokenizer=tokenizer, vocab_size=vocab_size)
    torch.manual_seed(0)
    encoder = ConvEncoder(40, channels=(64, 64), strides=strides, rnn_dim=64, dropout=0.0)
    head = CTCHead(encoder.output_dim, len(tok), dropout=0.0)
    hparams = {
        "tokenizer": tok,
        "compute_features": Fbank(n_mels=40),
        "mean_var_norm": InputNormalization(norm_type="sentence"),
        # Anchored at the random start here; weak, so that it cannot stop the overfit.
        "regularizers": {"l2sp": L2SP(encoder, head, alpha=1e-4, beta=0.0)},
        "output_folder": str(save),
        **(hparams or {}),
    }
    brain = LossTrackingCTCBrain(
        modules={"encoder": encoder, "ctc_head": head},
        opt_class=lambda params: torch.optim.Adam(params, lr=5e-3),
        hparams=hparams,
        run_opts={"device": "cpu"},
        checkpointer=Checkpointer(str(save / "ckpt"), {"encoder": encoder, "head": head}) if checkpointer else None,
    )
    return brain, data


def evaluate_with_beam_search(brain, test_set):
    """A beam-search twin of a trained brain (same modules), evaluated on ``test_set``."""
    hparams = {**vars(brain.hparams), "decoding": "beam", "beam_size": 8, "output_folder": None}
    twin = CTCBrain(modules=brain.modules, hparams=hparams, run_opts={"device": "cpu"})
    twin.evaluate(test_set, test_loader_kwargs=eval_loader(), progressbar=False)
    return twin


@pytest.fixture(scope="module")
def overfit_char_brain(tiny_corpus, tmp_path_factory):
    """A character CTCBrain trained for 160 steps on 8 utterances, then evaluated on them."""
    tmp = tmp_path_factory.mktemp("ctc_char")
    brain, data = ctc_brain(*small_asr_manifest(tiny_corpus[0], tmp), tmp)
    brain.fit(range(80), data["train"], train_loader_kwargs=LOADER, progressbar=False)
    brain.evaluate(data["test"], test_loader_kwargs=eval_loader(), progressbar=False)
    return brain, data, tmp


def test_char_ctc_overfits_a_handful_of_utterances(overfit_char_brain):
    brain, _, tmp = overfit_char_brain
    # Measured: CER 1 %, WER 5 %. Blanks only, or noise, score a CER near 100 %.
    assert brain.test_stats["CER"] < 15.0
    assert brain.test_stats["WER"] < 40.0
    assert set(brain.test_stats) == {"loss", "WER", "CER"}
    assert "%WER" in (tmp / "wer.txt").read_text()


def test_each_term_of_the_objective_is_logged(overfit_char_brain):
    brain, _, _ = overfit_char_brain
    assert set(brain.train_stats) == {"loss", "task_loss", "R_l2sp"}
    assert brain.train_stats["R_l2sp"] > 0


def test_beam_search_agrees_with_greedy_on_an_overfit_model(overfit_char_brain):
    greedy, data, _ = overfit_char_brain
    beam = evaluate_with_beam_search(greedy, data["test"])

    def scores(brain):
        return {score["key"]: score for score in brain.wer_metric.scores}

    beam_scores, greedy_scores = scores(beam), scores(greedy)
    assert beam_scores.keys() == greedy_scores.keys() and len(beam_scores) == N_UTTERANCES
    # On a model this sure of itself the two searches mostly agree (measured: 4 to 8 of 8 utterances, as rounding
    # noise in training moves it); where they differ, the beam keeps a hypothesis the greedy path missed, with no
    # more word errors.
    same = [key for key, score in greedy_scores.items() if beam_scores[key]["hyp_tokens"] == score["hyp_tokens"]]
    assert len(same) >= N_UTTERANCES // 2
    for key in greedy_scores.keys() - set(same):
        assert beam_scores[key]["num_edits"] <= greedy_scores[key]["num_edits"], key
    assert beam.test_stats["CER"] <= greedy.test_stats["CER"] + 1.0


def test_sentencepiece_ctc_learns(asr_manifest, tmp_path):
    folder, csvs = asr_manifest
    brain, data = ctc_brain(folder, csvs, tmp_path, tokenizer="sentencepiece", vocab_size=30)
    assert len(brain.hparams.tokenizer) == 30
    brain.fit(range(50), data["train"], train_loader_kwargs=LOADER, progressbar=False)
    brain.evaluate(data["test"], test_loader_kwargs=eval_loader(), progressbar=False)
    losses = [stats["task_loss"] for stats in brain.history]
    # Measured: 10.8 at first, 2.4-2.8 while it emits only blanks, 0.9 after 50 epochs; CER 44 %.
    assert losses[0] > 5.0
    assert losses[-1] < 1.5
    assert brain.test_stats["CER"] < 75.0
    # Summing over alignments helps most where the model is unsure: measured CER 34 % against 44 %.
    assert evaluate_with_beam_search(brain, data["test"]).test_stats["CER"] <= brain.test_stats["CER"]


def test_validation_saves_a_checkpoint_ranked_by_cer(asr_manifest, tmp_path):
    folder, csvs = asr_manifest
    brain, data = ctc_brain(folder, csvs, tmp_path, checkpointer=True)
    brain.fit(
        range(1),
        data["train"],
        data["valid"],
        progressbar=False,
        train_loader_kwargs=LOADER,
        valid_loader_kwargs=eval_loader(),
    )
    assert set(brain.valid_stats) == {"loss", "WER", "CER"}
    (checkpoint,) = brain.checkpointer.list_checkpoints()
    assert checkpoint.meta["WER"] == brain.valid_stats["WER"] and checkpoint.meta["CER"] == brain.valid_stats["CER"]
    assert brain.valid_history == [(2, brain.valid_stats["CER"])]  # 8 utterances, 4 a batch


def test_augmented_copies_get_their_transcripts(asr_manifest, tmp_path):
    folder, csvs = asr_manifest
    augment = Augmenter(concat_original=True, augmentations=[RandAmp()])
    brain, data = ctc_brain(folder, csvs, tmp_path, hparams={"wav_augment": augment})
    batch = next(iter(sb.dataio.dataloader.make_dataloader(data["train"], batch_size=4)))
    outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    assert outputs["log_probs"].shape[0] == 8
    loss = brain.compute_task_loss(outputs, batch, sb.Stage.TRAIN)
    assert math.isfinite(loss.item())


def test_utterances_with_fewer_frames_than_tokens_are_named(asr_manifest, tmp_path, caplog):
    folder, csvs = asr_manifest
    brain, data = ctc_brain(folder, csvs, tmp_path, strides=(8, 8))  # about 3 frames a second
    batch = next(iter(sb.dataio.dataloader.make_dataloader(data["train"], batch_size=2)))
    with caplog.at_level(logging.WARNING, logger="speechbrain_xfer.brains.ctc"):
        brain.compute_task_loss(brain.compute_forward(batch, sb.Stage.TRAIN), batch, sb.Stage.TRAIN)
    assert f"utterance {batch.id[0]}: 23 tokens but only" in caplog.text
    assert len([r for r in caplog.records if r.name == "speechbrain_xfer.brains.ctc"]) == 2


@pytest.mark.parametrize("kind", ["char", "sentencepiece"])
def test_a_second_run_reuses_the_saved_tokenizer(asr_manifest, tmp_path, kind):
    _, csvs = asr_manifest
    save = tmp_path / "tokenizer"
    _, first = asr_datasets("unused", csvs, str(save), tokenizer=kind, vocab_size=30)
    saved = {path: path.stat().st_mtime_ns for path in save.rglob("*") if path.suffix in (".txt", ".model")}
    _, second = asr_datasets("unused", csvs, str(save), tokenizer=kind, vocab_size=30)
    assert saved and all(path.stat().st_mtime_ns == mtime for path, mtime in saved.items())
    assert second.vocabulary() == first.vocabulary()
    assert second.decode(second.encode("call oliver monday")) == "call oliver monday"


def test_a_pretrained_character_set_is_taken_as_it_is(asr_manifest, tmp_path, caplog):
    # The source model's characters in another order than the target transcripts would give, and no 'v'.
    _, csvs = asr_manifest
    source = tmp_path / "source"
    source.mkdir()
    chars = CharTokenizer.load_or_create(source / "tokenizer.ckpt", ["zyx wutsrqponmlkjihgfedcba"])
    with caplog.at_level(logging.WARNING, logger="speechbrain_xfer.data.dataio"):
        _, tok = asr_datasets("unused", csvs, str(tmp_path / "save"), tokenizer_source=str(source))
    assert tok.vocabulary() == chars.vocabulary()
    assert tok.encode("call oliver") == chars.encode("call oliver")
    assert "characters ['v'] of the transcripts are not in the character set of" in caplog.text
    # Saved in the save folder, so that a resumed run reads the same set even without the source.
    (source / "tokenizer.ckpt").unlink()
    _, again = asr_datasets("unused", csvs, str(tmp_path / "save"), tokenizer_source=str(source))
    assert again.vocabulary() == chars.vocabulary()


def test_a_pretrained_character_set_must_exist_and_be_characters(asr_manifest, tmp_path):
    _, csvs = asr_manifest
    with pytest.raises(PretrainedSourceError, match=r"no file 'tokenizer\.ckpt' for module 'tokenizer'"):
        asr_datasets("unused", csvs, str(tmp_path / "save"), tokenizer_source=str(tmp_path))
    with pytest.raises(ValueError, match="with tokenizer='sentencepiece' leave it out"):
        asr_datasets("unused", csvs, str(tmp_path), tokenizer="sentencepiece", vocab_size=30, tokenizer_source="x")


def test_manifest_without_transcripts_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("ID,duration,wav\nu1,1.0,$data_root/u1.wav\n")
    with pytest.raises(ManifestError, match=r"train\.csv has no column 'transcript'"):
        asr_datasets("data", {"train": str(path)}, str(tmp_path / "save"))


def test_tokenizer_choices_are_checked(asr_manifest, tmp_path):
    _, csvs = asr_manifest
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'"):
        asr_datasets("data", csvs, str(tmp_path), tokenizer="bpe")
    with pytest.raises(ValueError, match="needs a vocab_size"):
        asr_datasets("data", csvs, str(tmp_path), tokenizer="sentencepiece")
    with pytest.raises(ValueError, match="Vocabulary size is smaller than required_chars"):
        asr_datasets("data", csvs, str(tmp_path), tokenizer="sentencepiece", vocab_size=5)


@pytest.mark.parametrize(
    "hparams, message",
    [
        ({"decoding": "viterbi"}, "decoding is 'viterbi'"),
        ({"blank_index": 3}, "blank_index is 3 but the tokenizer's blank is 0"),
    ],
)
def test_inconsistent_hparams_are_refused(asr_manifest, tmp_path, hparams, message):
    folder, csvs = asr_manifest
    with pytest.raises(ValueError, match=message):
        ctc_brain(folder, csvs, tmp_path, hparams=hparams)


def test_a_head_of_the_wrong_size_is_refused(asr_manifest, tmp_path):
    folder, csvs = asr_manifest
    _, tok = asr_datasets(str(folder), csvs, str(tmp_path))
    modules = {"encoder": ConvEncoder(40, channels=(8,), strides=(1,)), "ctc_head": CTCHead(8, len(tok) - 1)}
    with pytest.raises(ValueError, match=f"ctc_head has {len(tok) - 1} outputs but the tokenizer has {len(tok)}"):
        CTCBrain(modules=modules, hparams={"tokenizer": tok}, run_opts={"device": "cpu"})
