"""Catalog tables in and out: a run trained on a table, new rows scored from a table into a
table, through the CLI with a persistent (Hive, Derby-backed) catalog in the test's folder."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tests.conftest import TINY, run_cli

MAKE_TABLES = """
import pandas as pd
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]")
         .config("spark.sql.catalogImplementation", "hive")
         .config("spark.sql.warehouse.dir", {wh!r}).getOrCreate())
for name in ("train_rows", "new_rows"):
    spark.createDataFrame(pd.read_parquet(name + ".parquet")).write.saveAsTable(name)
spark.stop()
"""


def test_a_run_on_a_table_scores_a_table_into_a_table(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(900, 3))
    y = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2]
    frame = pd.DataFrame({"cust": [f"c{i}" for i in range(900)], "a": x[:, 0], "b": x[:, 1],
                          "c": x[:, 2], "y": y})
    frame.iloc[:800].to_parquet(tmp_path / "train_rows.parquet")
    frame.iloc[800:].drop(columns="y").to_parquet(tmp_path / "new_rows.parquet")  # unlabelled
    wh = tmp_path / "warehouse"
    made = subprocess.run([sys.executable, "-c", MAKE_TABLES.format(wh=str(wh))], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1",
                               "PYSPARK_PYTHON": sys.executable})
    assert made.returncode == 0, made.stderr[-2000:]
    catalog = ("++deploy.spark_conf={spark.sql.catalogImplementation:hive,"
               f"spark.sql.warehouse.dir:'{wh}'}}")

    run = tmp_path / "run"
    proc = run_cli(["data=table", "data.table=train_rows", "data.label=y",
                    "data.features=[a,b,c]", *TINY, "train.epochs=15", catalog,
                    f"data.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "test_r2" in proc.stdout

    score = ["stages=[infer]", f"model_path={run}", "data@inference.data=table",
             "inference.data.table=new_rows", "inference.table=scored_rows", catalog]
    proc = run_cli([*score, f"hydra.run.dir={tmp_path / 'score'}"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert "saved as table scored_rows" in proc.stdout and "no labels: no metrics" in proc.stdout
    scored = pq.read_table(wh / "scored_rows").to_pandas().merge(frame, on="cust")
    assert len(scored) == 100 and {"cust", "prediction"} <= set(scored.columns)
    residual = ((scored.prediction - scored.y) ** 2).sum()
    assert 1 - residual / ((scored.y - scored.y.mean()) ** 2).sum() >= 0.8  # R2 on new rows

    again = run_cli([*score, f"hydra.run.dir={tmp_path / 'again'}"], tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "error: inference.table: scored_rows exists; drop it, choose another inference.table, "
        "or set inference.overwrite=true"]
    missing = run_cli([*score[:3], "inference.data.table=nope", catalog,
                       f"hydra.run.dir={tmp_path / 'missing'}"], tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: inference.data.table: cannot read table 'nope'")
    assert "Traceback" not in missing.stdout + missing.stderr
