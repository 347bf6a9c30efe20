"""``runner.load_model``: a pyspark.ml Model scoring DataFrames in the user's own Spark job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch

import runner
from tests.conftest import ROOT

SCRIPT = """
import json, os, sys
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession
from runner import load_model

spark = SparkSession.builder.master("local[2]").getOrCreate()
try:
    df = spark.read.options(header=True, inferSchema=True).csv(sys.argv[2])
    model = load_model(sys.argv[1])
    scored = model.transform(df)  # lazy
    scored.createOrReplaceTempView("scored")
    rows = spark.sql("SELECT customer, prediction, probability.high AS high FROM scored "
                     "WHERE prediction = 'high'").collect()
    print(json.dumps({"columns": scored.columns, "total": scored.count(),
                      "high": [[r.customer, r.high] for r in rows]}))
finally:
    spark.stop()
"""


def test_load_model_scores_a_dataframe_in_a_plain_pyspark_script(scoring_run, tmp_path):
    run, _, new = scoring_run
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(run), str(new)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["columns"] == ["customer", "day", "prediction", "prediction_index", "probability"]
    assert out["total"] == 200
    assert out["high"] and all(p > 1 / 3 for _, p in out["high"])


def test_load_model_is_a_pipeline_stage_and_still_the_torch_module(spark, scoring_run):
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import SQLTransformer

    run, labelled, _ = scoring_run
    df = spark.read.options(header=True, inferSchema=True).csv(str(labelled))
    model = runner.load_model(run, keep_columns=["customer", "species"])
    older = SQLTransformer(statement="SELECT *, upper(customer) AS key FROM __THIS__")
    pipeline = Pipeline(stages=[older, model]).fit(df)
    scored = pipeline.transform(df).toPandas()
    assert list(scored.columns[:2]) == ["customer", "species"] and len(scored) == 200
    assert (scored["prediction"] == scored["species"]).mean() > 0.7
    assert model.classes == ["high", "low", "medium"]

    # what load_model returned before: the torch module, still reachable
    x = torch.zeros(3, *model.artifact.input_shape)
    assert model(x).shape == (3, 3)
    assert isinstance(model.module, torch.nn.Module) and not model.training
    assert np.allclose(model(x).detach().numpy(), model.module(x).detach().numpy())
