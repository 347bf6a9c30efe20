"""spark-dl-runner: declarative deep-learning experiments on Spark and PyTorch."""

from runner.api import load_model, run

__version__ = "0.1.0"
__all__ = ["load_model", "run"]
