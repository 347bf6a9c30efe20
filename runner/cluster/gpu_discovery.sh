#!/usr/bin/env bash
# Spark GPU discovery script: prints {"name":"gpu","addresses":["0",...]} for the visible GPUs.
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | sed 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
