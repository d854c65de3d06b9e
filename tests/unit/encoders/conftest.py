"""Tiny wav2vec 2.0, HuBERT, WavLM and Whisper models saved as hub-style folders, shared by the encoder tests."""

import huggingface_hub.constants
import pytest
import torch
from tiny_hf import BUILDERS, FAMILIES, SSL_CONFIG, WHISPER_CONFIG


@pytest.fixture
def offline(monkeypatch):
    """Nothing may come from the network: huggingface_hub and transformers read this flag at call time."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """family -> (folder, state_dict) of a tiny random model (2 layers of width 32) saved as a hub repo holds it."""
    root = tmp_path_factory.mktemp("hf_models")
    models = {}
    for seed, family in enumerate(FAMILIES):
        config_class, model_class, extractor_class = BUILDERS[family]
        torch.manual_seed(seed)
        model = model_class(config_class(**(WHISPER_CONFIG if family == "whisper" else SSL_CONFIG)))
        folder = root / family
        model.save_pretrained(folder)
        extractor_class().save_pretrained(folder)
        models[family] = (str(folder), {k: v.clone() for k, v in model.state_dict().items()})
    return models
