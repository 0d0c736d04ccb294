"""Rating projects, the rater workflow and quality control."""
