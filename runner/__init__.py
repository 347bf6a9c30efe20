"""spark-dl-runner: declarative deep-learning experiments on Spark and PyTorch."""

__version__ = "0.1.0"
