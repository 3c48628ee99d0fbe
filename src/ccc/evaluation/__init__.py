"""Measuring the counter: benchmark, accuracy sweep, generated sample sets, annotated images and
synthetic detector models for tests. None of it runs in the enclave."""
