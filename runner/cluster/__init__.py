"""Spark: deploy targets, the only session builder, GPU resource planning, the local
standalone cluster."""
