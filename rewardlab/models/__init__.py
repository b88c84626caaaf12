"""Models: locating and loading tokenizers and reward models."""
