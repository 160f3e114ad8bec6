"""Simulators and their batched, vectorised planning objectives."""
