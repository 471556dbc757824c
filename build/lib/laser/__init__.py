"""LaSeR: Reinforcement Learning with Last-Token Self-Rewarding, as a reproducible workflow."""

__version__ = "0.1.0"
