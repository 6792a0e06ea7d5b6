"""zoo: datasets, the model registry and functional JAX training (the first stage of the picozoo pipeline)."""

__version__ = "0.1.0"
