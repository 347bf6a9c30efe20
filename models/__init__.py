"""PyTorch architectures, each built by ``hydra.utils.instantiate`` from ``conf/model/``.

Every model takes ``input_shape`` (one example's shape) and ``num_classes`` from the
prepared data, plus its own size and dropout settings.
"""
