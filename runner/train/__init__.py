"""Training: one trial (no pyspark), DDP processes and the retrain stage."""
