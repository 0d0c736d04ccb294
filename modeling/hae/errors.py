"""Errors the model code raises; each message says what was wrong and how to fix it."""

from __future__ import annotations


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint where one was asked for. Never answered by falling back to random weights."""


class IncompatibleCheckpointError(ValueError):
    """A checkpoint exists but does not fit (format, dimensions, tensor shapes, backbone kind)."""


class ReleaseError(ValueError):
    """A release directory or label file that does not follow the official layout."""
