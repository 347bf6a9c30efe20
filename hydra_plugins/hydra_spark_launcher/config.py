"""Schema of `hydra/launcher=spark`."""

from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SparkLauncherConf:
    _target_: str = "hydra_plugins.hydra_spark_launcher.spark_launcher.SparkLauncher"

    # Spark master: local[*], local[N], local-cluster[W,C,M], spark://host:port, yarn,
    # or sc://host:port for Spark Connect. Ignored when a SparkSession is already active.
    # Quote brackets on the command line: hydra.launcher.master='local[4]'.
    master: str = "local[*]"

    # Spark application name of a session the launcher creates.
    app_name: str = "hydra-spark-launcher"

    # null: one Spark task per job, all submitted at once (Spark runs as many as there
    # are free task slots). N: at most N jobs at a time; the batch is cut into N
    # partitions of consecutive jobs, each run one after the other in its task.
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
