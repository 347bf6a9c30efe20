#!/usr/bin/env bash
# Spark GPU discovery: print this machine's NVIDIA GPU indices as a Spark ResourceInformation.
ADDRS=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | sed -e 's/^/"/' -e 's/$/"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${ADDRS}]}"
