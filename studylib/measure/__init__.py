"""Measuring a trained model: log-likelihoods, accuracy, bits/dim, detection thresholds,
and the likelihood along interpolation paths."""
