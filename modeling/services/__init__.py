"""Writes for the modeling app: releases, the model registry, scoring and training."""
