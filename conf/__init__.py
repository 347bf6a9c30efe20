"""The bundled Hydra configs, found as ``pkg://runner.conf`` (``runner/conf`` links here)."""
