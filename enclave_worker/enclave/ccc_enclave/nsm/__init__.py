"""Attestation production: the NSM port, /dev/nsm (`device`), the local tier's simulated NSM
(`simulated`, signed by a per-stack CA from `local_ca`) and the local measurement recipe."""
