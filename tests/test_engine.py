"""The training engine on a fixed model: evaluate equals a hand computation in any batching,
``reduce`` totals ranks, an epoch's loss is the mean over rows, outputs are the model's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runner.tasks import Classification
from runner.train import engine

TASK = Classification()


@pytest.fixture
def fixed():
    """A 3-class linear model with set weights, and 10 rows it gets partly right."""
    model = torch.nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        model.bias.zero_()
    x = torch.tensor(np.random.default_rng(0).normal(size=(10, 2)), dtype=torch.float32)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    return model, x, y


def _by_hand(model, x, y) -> dict[str, float]:
    logits = (x.numpy().astype(np.float64) @ model.weight.detach().numpy().T.astype(np.float64)
              + model.bias.detach().numpy())
    logsumexp = np.log(np.exp(logits).sum(1))
    loss = logsumexp - logits[np.arange(len(y)), y.numpy()]
    return {"accuracy": float(np.mean(logits.argmax(1) == y.numpy())), "loss": float(loss.mean())}


@pytest.mark.parametrize("size", [1, 3, 10, 4096])
def test_evaluate_equals_the_hand_computation_in_any_batching(fixed, size):
    model, x, y = fixed
    metrics = engine.evaluate(model, TASK, engine.batches(x, y, size))
    expected = _by_hand(model, x, y)
    assert 0 < expected["accuracy"] < 1
    assert metrics["accuracy"] == expected["accuracy"]
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-6)


def test_reduce_totals_the_sums_of_every_rank(fixed):
    model, x, y = fixed
    other_rank = TASK.sums(model(x[6:]), y[6:]).double().detach()
    metrics = engine.evaluate(model, TASK, engine.batches(x[:6], y[:6], 4),
                              reduce=lambda sums: sums + other_rank)
    assert metrics == pytest.approx(engine.evaluate(model, TASK, engine.batches(x, y, 10)))


def test_batches_follow_the_order_and_always_yield_one(fixed):
    _, x, y = fixed
    order = torch.tensor([9, 0, 5, 1])
    got = list(engine.batches(x, y, 3, order))
    assert [b[1].tolist() for b in got] == [[0, 0, 2], [1]]
    empty = list(engine.batches(x[:0], y[:0], 3))
    assert len(empty) == 1 and len(empty[0][1]) == 0


def test_an_epoch_reports_the_mean_loss_over_rows(fixed):
    model, x, y = fixed
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)
    steps = []
    loss = engine.train_epoch(model, TASK, frozen, engine.batches(x, y, 4),
                              on_step=lambda: steps.append(1))
    assert len(steps) == 3  # batches of 4, 4, 2 rows
    assert loss == pytest.approx(_by_hand(model, x, y)["loss"], rel=1e-6)
    assert model.training


def test_an_epoch_learns_and_refuses_a_non_finite_loss(fixed):
    model, x, y = fixed
    before = engine.evaluate(model, TASK, engine.batches(x, y, 10))["loss"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(20):
        engine.train_epoch(model, TASK, optimizer, engine.batches(x, y, 10))
    assert engine.evaluate(model, TASK, engine.batches(x, y, 10))["loss"] < before
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        engine.train_epoch(model, TASK, optimizer, engine.batches(x, y, 10))


def test_outputs_are_the_models_in_any_batching(fixed):
    model, x, _ = fixed
    expected = model(x).detach()
    for size in (1, 4, 100):
        assert torch.allclose(engine.outputs(model, x, size, "cpu"), expected)
    assert engine.outputs(model, x[:0], 4, "cpu").shape == (0, 3)


def test_the_loop_trains_under_bf16_autocast_and_gets_its_schedule_filled_in():
    """The mixed-precision path (CUDA in practice; CPU autocast runs bf16 too) and a
    scheduler whose length the loop fills in."""
    import torch

    from runner.tasks import Classification
    from runner.train import engine

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler, interval = engine.make_scheduler(
        {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "interval": "step"},
        optimizer, epochs=2, steps_per_epoch=4)
    assert interval == "step" and scheduler.T_max == 8
    loop = engine.Loop(grad_clip=1.0, precision="bf16", scheduler=scheduler, interval=interval)
    losses = [engine.train_epoch(model, Classification(), optimizer,
                                 engine.batches(x, y, 16), loop=loop) for _ in range(2)]
    assert all(loss == loss for loss in losses)  # finite, not NaN
    assert optimizer.param_groups[0]["lr"] < 1e-6  # cosine ran its 8 steps to 0
    assert engine.Loop.of({"epochs": 2, "precision": "bf16"}, optimizer, "cpu", 4).precision == "32"
