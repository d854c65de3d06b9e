"""Sizes and builders of the tiny hub-style models of the encoder tests (the fixtures are in conftest.py)."""

from transformers import (
    HubertConfig,
    HubertModel,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    WavLMConfig,
    WavLMModel,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

FAMILIES = ("wav2vec2", "hubert", "wavlm", "whisper")
DIM = 32
LAYERS = 2
SSL_CONFIG = dict(
    hidden_size=DIM,
    num_hidden_layers=LAYERS,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(32, 32),
    conv_stride=(5, 4),
    conv_kernel=(10, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)
WHISPER_CONFIG = dict(
    d_model=DIM,
    encoder_layers=LAYERS,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=64,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    max_source_positions=1500,
)
BUILDERS = {
    "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2FeatureExtractor),
    "hubert": (HubertConfig, HubertModel, Wav2Vec2FeatureExtractor),
    "wavlm": (WavLMConfig, WavLMModel, Wav2Vec2FeatureExtractor),
    "whisper": (WhisperConfig, WhisperModel, WhisperFeatureExtractor),
}
