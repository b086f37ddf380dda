"""Data: pair manifests (`manifest`) and the synthetic data set (`synth`)."""
