"""One training loop per model family (gan.py: dcgan, cgan, infogan; vae.py) and the plumbing they share: the
training config (config.py), one run's state and bundle writing (run.py, resume.py), batches (batches.py),
the divergence guard (divergence.py), disk budgeting (disk.py), optimizer state (optimizer_state.py), the bundle's
provenance sections (provenance.py) and the speed options (speed.py)."""
