"""Data: sources, preprocessing steps, the preprocess stage, the prepared data on disk."""
