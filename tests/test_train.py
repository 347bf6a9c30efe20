"""The train stage through TorchDistributor: local mode on local[2], barrier tasks on local-cluster."""

from __future__ import annotations

import json

import pytest
import torch

from runner.data import preprocess
from runner.tune import sweep
from runner.cluster.targets import target_for
from runner.train import retrain
from runner.train.ddp import CHECKPOINT
from runner.errors import RunnerError
from tests.conftest import TINY, compose_config, run_cli

CLASSIFICATION = {"_target_": "runner.tasks.Classification"}


@pytest.fixture(scope="module")
def prepared(spark, tmp_path_factory):
    """Digits, prepared once for this module."""
    return preprocess.run(spark, compose_config(TINY).data, tmp_path_factory.mktemp("cache"))


def sections(cfg, **train_changes):
    out = sweep.trial_config(cfg, {})
    out["train"].update(train_changes)
    return out


def accuracy_on_test(artifact, prepared) -> float:
    x, y = prepared.read("test")
    model = artifact.build()
    with torch.no_grad():
        logits = model(torch.from_numpy(x).reshape(-1, *artifact.input_shape))
    return float((logits.argmax(1) == torch.from_numpy(y)).float().mean())


@pytest.mark.slow
def test_two_processes_match_one_on_digits(spark, cfg, prepared, tmp_path):
    results = {
        n: retrain.run(spark, prepared, sections(cfg, epochs=6, num_processes=n),
                       CLASSIFICATION, tmp_path / f"n{n}", is_local=True)
        for n in (1, 2)
    }
    two, one = results[2], results[1]
    assert two.num_processes == 2 and two.local_mode and two.device == "cpu"
    assert [h["epoch"] for h in two.history] == list(range(1, 7))
    assert (tmp_path / "n2" / "train" / CHECKPOINT).exists()
    accuracy = {n: accuracy_on_test(r.artifact, prepared) for n, r in results.items()}
    assert accuracy[1] >= 0.88 and accuracy[2] >= 0.88, accuracy
    assert abs(accuracy[2] - accuracy[1]) <= 0.04, accuracy


def test_checkpoint_of_another_configuration_is_refused(spark, cfg, prepared, tmp_path):
    (tmp_path / "train").mkdir()
    torch.save({"key": "someone-else", "epoch": 1}, tmp_path / "train" / CHECKPOINT)
    with pytest.raises(RunnerError, match="delete it or run in a new hydra.run.dir"):
        retrain.run(spark, prepared, sections(cfg), CLASSIFICATION, tmp_path, is_local=True)


def test_barrier_tasks_need_enough_slots(spark, cfg, prepared, tmp_path):
    with pytest.raises(RunnerError, match="train.num_processes: 3 barrier tasks"):
        retrain.run(spark, prepared, sections(cfg, num_processes=3, local_mode=False),
                    CLASSIFICATION, tmp_path, is_local=True)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["train.num_processes=0"], "train.num_processes: must be at least 1"),
        (["train.num_processes=4", "train.batch_size=2"], "train.batch_size: 2 is the global batch"),
        (["deploy=local_cluster", "train.local_mode=false", "train.use_gpu=true"],
         "spark.task.resource.gpu.amount"),
    ],
)
def test_validate_names_the_key(overrides, expected):
    problems = retrain.validate(compose_config(overrides))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("option", "local"), [("local", True), ("local_cluster", True),
                                               ("local_gpu", True), ("standalone", False)])
def test_local_mode_follows_the_target(option, local):
    cfg = compose_config([f"deploy={option}"])
    assert retrain.resolve_local_mode(None, target_for(cfg.deploy).is_local) is local
    assert retrain.resolve_local_mode(not local, local) is not local  # train.local_mode wins


@pytest.mark.cluster
@pytest.mark.slow
def test_cli_trains_on_local_cluster_and_deploys_the_trained_model(tmp_path, digits_cache):
    """Two barrier tasks on separate executor JVMs; the CLI's own session, stopped at exit."""
    run_dir = tmp_path / "run"
    proc = run_cli(
        ["deploy=local_cluster", "train.local_mode=false", "stages=[preprocess,train,infer]",
         "train.enabled=true",
         "train.epochs=6", f"hydra.run.dir={run_dir}", f"data.cache_dir={digits_cache}"],
        tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["deployed"] == "train"
    assert summary["train"]["num_processes"] == 2 and summary["train"]["local_mode"] is False
    assert summary["test_metrics"]["test_accuracy"] >= 0.88
    assert "best" not in summary and not (run_dir / "trials.jsonl").exists()
    assert set(summary["timings_s"]) == {"spark", "preprocess", "train", "infer", "total"}
    assert (run_dir / "train" / CHECKPOINT).exists() and (run_dir / "model" / "weights.pt").exists()
    assert "Traceback" not in proc.stdout + proc.stderr
