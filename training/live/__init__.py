"""Live training: a small GAN or VAE trained one step at a time in its own process, watched and steered from the
explorer's "Train live" page (settings, the trainer, the run folder protocol, the worker process, the server-side
manager, and a benchmark)."""
