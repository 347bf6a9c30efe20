"""``python -m runner.cluster start|stop|status``: the local standalone cluster (``standalone``)."""

from runner.cluster.standalone import main

main()
