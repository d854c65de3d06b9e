"""General data loading: audio checks, dataio pipelines, tokenizers, batches by duration, augmentation,
and the frozen-encoder feature cache."""
