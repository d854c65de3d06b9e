"""sbx push: fails fast and leaves the folder alone without a token or a reachable hub; uploads a copy whose model
card loads from the repository. Only the upload's network calls are replaced, in the one test that says so."""

import hashlib
import time

import pytest
from huggingface_hub import HfApi

from speechbrain_xfer.cli import main
from speechbrain_xfer.hub.push import PushError, push_export


@pytest.fixture
def export_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text("sample_rate: 16000\n")
    (folder / "encoder.ckpt").write_bytes(b"\x00" * 64)
    source = str(folder.resolve())
    (folder / "README.md").write_text(
        f'---\nlibrary_name: speechbrain\n---\nx = load(source="{source}")\nx.classify_file("{source}/example.wav")\n'
    )
    return folder


@pytest.fixture
def no_login(tmp_path, monkeypatch):
    """No token anywhere: no HF_TOKEN and an empty hub cache (no cached login)."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_push_without_a_token_fails_fast_and_changes_nothing(export_folder, no_login, capsys):
    before = digest(export_folder)
    start = time.perf_counter()
    with pytest.raises(SystemExit, match="no Hugging Face token: pass --token, set HF_TOKEN"):
        main(["push", str(export_folder), "someone/model"])
    assert time.perf_counter() - start < 10  # no network attempt, no retries
    assert digest(export_folder) == before


def test_push_to_an_unreachable_hub_fails_with_a_clear_message(export_folder, monkeypatch):
    # A real client and real network calls, to a port where nothing listens: what a machine without network sees.
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    before = digest(export_folder)
    api = HfApi(endpoint="http://127.0.0.1:9", token="hf_test")
    with pytest.raises(PushError, match=r"could not .*push .* unchanged"):
        push_export(str(export_folder), "someone/model", token="hf_test", api=api)
    assert digest(export_folder) == before


def test_push_rejects_a_folder_that_is_not_an_export(tmp_path):
    with pytest.raises(PushError, match="has no hyperparams.yaml"):
        push_export(str(tmp_path), "someone/model", token="hf_test")


def test_push_uploads_a_copy_whose_card_loads_from_the_repo(export_folder):
    """The network calls (create_repo, upload_folder) are replaced by a recorder: the one replacement in tests."""

    class RecordingApi:
        def __init__(self):
            self.calls = []

        def create_repo(self, repo_id, private, exist_ok, repo_type):
            self.calls.append(("create_repo", repo_id, private))
            return f"https://hub.example/{repo_id}"

        def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
            from pathlib import Path

            self.uploaded = {p.name: p.read_text(errors="replace") for p in Path(folder_path).iterdir()}
            self.calls.append(("upload_folder", repo_id))

    api = RecordingApi()
    before = digest(export_folder)
    url = push_export(str(export_folder), "someone/model", private=True, token="hf_test", api=api)
    assert url == "https://hub.example/someone/model"
    assert api.calls == [("create_repo", "someone/model", True), ("upload_folder", "someone/model")]
    assert sorted(api.uploaded) == ["README.md", "encoder.ckpt", "hyperparams.yaml"]
    card = api.uploaded["README.md"]
    assert 'source="someone/model"' in card and '"someone/model/example.wav"' in card
    assert str(export_folder.resolve()) not in card
    assert digest(export_folder) == before  # the local card still loads from the folder
