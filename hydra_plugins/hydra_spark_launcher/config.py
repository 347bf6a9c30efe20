"""Schema of `hydra/launcher=spark`."""

from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SparkLauncherConf:
    _target_: str = "hydra_plugins.hydra_spark_launcher.spark_launcher.SparkLauncher"

    # How jobs run. task: each job is one Spark task on an executor (any Hydra app).
    # driver: each job runs on a driver thread, at most `parallelism` at a time, and
    # starts its own Spark jobs on the application the first job opens (FAIR pools);
    # for task functions that use Spark themselves, such as `python -m runner`.
    # null: driver for task functions marked with spark_launcher.driver_job, else task.
    mode: Optional[str] = None

    # Spark master: local[*], local[N], local-cluster[W,C,M], spark://host:port, yarn,
    # or sc://host:port for Spark Connect. Ignored when a SparkSession is already active.
    # Task mode only (in driver mode the jobs build the session themselves).
    # Quote brackets for Hydra and for the shell: "hydra.launcher.master='local[4]'".
    master: str = "local[*]"

    # Spark application name of a session the launcher creates.
    app_name: str = "hydra-spark-launcher"

    # Task mode: null submits one Spark task per job at once (Spark runs as many as there
    # are free task slots); N runs at most N jobs at a time: the batch is cut into N
    # partitions of consecutive jobs, each run one after the other in its task.
    # Driver mode: at most N (null: all) jobs of a batch on driver threads at a time.
    parallelism: Optional[int] = None

    # Task resources per job, applied as a stage-level ResourceProfile when set. Spark
    # honours task profiles only on cluster masters (local-cluster, standalone, YARN, K8s)
    # with dynamic allocation off, so local[...] masters are refused; local[*] could not
    # schedule GPUs anyway. Executors must own the GPUs; Spark does not set
    # CUDA_VISIBLE_DEVICES: read TaskContext.get().resources()["gpu"].addresses in the job.
    cpus_per_job: Optional[int] = None
    gpus_per_job: Optional[float] = None

    # Extra settings passed to SparkSession.builder.config(key, value); they override
    # the launcher's defaults (UI and console progress off).
    spark_conf: Dict[str, str] = field(default_factory=dict)

    # Stop, at the end of each launch() (one per sweeper batch), a session this launcher
    # created. false keeps it for later batches and stops it at interpreter exit.
    # A session that was already active is reused and never stopped.
    stop_session: bool = True


ConfigStore.instance().store(
    group="hydra/launcher",
    name="spark",
    node=SparkLauncherConf,
    provider="spark_launcher",
)
