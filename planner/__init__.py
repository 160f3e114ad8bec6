"""Diffusion Elites: Cross-Entropy search over the noise latent of a trajectory diffusion model.

Imports torch and numpy only (see ARCHITECTURE.md): never gymnasium, mujoco, stable_baselines3
or ray.
"""
