"""Benchmarks and studies: scripts that print figures, never imported by the package itself. train_speed (training
steps per second, `python -m training.bench`), photo (GAN inversion), photo_limits (hostile images), live (Train live
beside a slider), metrics_study (how many samples the metrics need); report holds the one way they print."""
