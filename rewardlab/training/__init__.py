"""Training reward models: config, losses, batching, the trainer, and the run that ties them."""
