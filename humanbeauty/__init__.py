"""Pure-Python shared code (no Django): the 12-dimensional standard."""
