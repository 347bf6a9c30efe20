"""Serving: the infer stage and the saved model artifact."""
