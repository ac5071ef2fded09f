#!/bin/sh
# Entrypoint of the shardflow image: prepares the secret (and optionally a cluster directory), then runs
# `shardflow "$@"` as PID 1 (exec), so SIGTERM from the container runtime reaches the node and it stops cleanly.
#
# Why: shardflow refuses a secret file that group or others can read (mode must be 0600 or stricter), but a
# Kubernetes Secret volume is mounted read-only, and with fsGroup set its files become group-readable (0440).
# So the mounted secret is copied to a private file first.
#
#   SHARDFLOW_SECRET_SOURCE   a mounted secret file (64 hex digits) to copy
#   SHARDFLOW_SECRET_FILE     where to copy it, mode 0600 (default /run/shardflow/secret); pass it to --secret-file
#   SHARDFLOW_CLUSTER_SOURCE  a mounted cluster.json; if set, a cluster directory is assembled in SHARDFLOW_DIR
#   SHARDFLOW_DIR             that directory (default /run/shardflow/cluster): cluster.json + secret, for commands
#                             that only take --dir (status, autoscale, rebalance, kv, jobs, ...)
set -eu

if [ -n "${SHARDFLOW_SECRET_SOURCE:-}" ]; then
  target="${SHARDFLOW_SECRET_FILE:-/run/shardflow/secret}"
  mkdir -p "$(dirname "$target")"
  umask 077
  cp "$SHARDFLOW_SECRET_SOURCE" "$target.tmp"
  chmod 600 "$target.tmp"
  mv "$target.tmp" "$target"
  if [ -n "${SHARDFLOW_CLUSTER_SOURCE:-}" ]; then
    dir="${SHARDFLOW_DIR:-/run/shardflow/cluster}"
    mkdir -p "$dir"
    chmod 700 "$dir"
    cp "$SHARDFLOW_CLUSTER_SOURCE" "$dir/cluster.json"
    cp "$target" "$dir/secret"
    chmod 600 "$dir/secret" "$dir/cluster.json"
  fi
fi

exec node /opt/shardflow/bin/shardflow.js "$@"
