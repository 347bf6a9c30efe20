"""PyTorch architectures, each built by ``hydra.utils.instantiate`` from ``conf/model/``.

Every model takes ``input_shape`` (one example's shape), what the task tells it
(``Task.model_kwargs``; classification: ``num_classes``), what the preparation tells it
(``categories`` of ``{op: categorical}`` steps, which ``tabular`` embeds) and its own size
and dropout settings. A model may define ``check_input(input_shape) -> list[str]``, a
classmethod the runner calls before Spark starts (``runner/train/model.py``).
"""
