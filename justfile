# spark-dl-runner tasks: `just --list`

python := env_var_or_default("PYTHON", "python")

# install the CPU build of torch from local disk first, then the project and its dev tools
setup:
    {{python}} -m pip install torch==2.13.0
    {{python}} -m pip install -e ".[dev]"

# run an experiment: `just run model=cnn search.n_trials=4`
run *overrides:
    {{python}} -m runner {{overrides}}

# the test suite (what CI runs): two workers; the tests of one shared multirun stay together
test *args:
    {{python}} -m pytest -n 2 --dist loadgroup {{args}}

# benchmarks; tables land in outputs/bench/
bench *which:
    {{python}} -m runner.bench {{which}}

# byte-compile everything, lint and format-check (ruff) and type-check (mypy; config in pyproject.toml), list repeated code
lint:
    {{python}} -m compileall -q runner models tests hydra_plugins
    {{python}} -m ruff check runner models hydra_plugins
    {{python}} -m ruff format --check runner models hydra_plugins
    {{python}} -m mypy
    -duplicates

# a Spark standalone Master + Worker on 127.0.0.1:7077 (`just cluster stop` ends it);
# then: just run deploy=standalone
cluster action="start" *args:
    {{python}} -m runner.cluster {{action}} {{args}}
