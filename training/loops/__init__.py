"""One training loop per model family (gan.py: dcgan, cgan, infogan; vae.py), sharing common.py's plumbing."""
