"""Training a model end to end: ``fit`` (the epoch loop, with evaluation, early stopping and callbacks),
checkpoints, stop signals and divergence checks."""
