"""Training pipeline for safety-filter's local classifier (not needed at runtime)."""
