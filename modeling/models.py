"""Dataset releases and the model registry arrive with the releases and modeling issues."""
