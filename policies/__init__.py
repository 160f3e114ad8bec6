"""Adapters from planners to the Gymnasium / stable-baselines3 world, and baseline planners."""
