"""Latent-space work the app calls: the distributions codes are drawn from (priors), the one way codes become
images (sampling), how typical a code is under the prior (typicality) and finding a code for a photo (inversion)."""
