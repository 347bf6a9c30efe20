"""Tuning: the search space, the sweep stage, its trial coordinator and cost model."""
