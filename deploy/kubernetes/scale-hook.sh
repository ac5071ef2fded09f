#!/usr/bin/env bash
# shardflow autoscaler command hook for Kubernetes.
#
#   scale-hook.sh {tier} {count} {nodes}
#
# Configured in cluster.json as
#   "provisioner": { "kind": "command",
#                    "command": ["/opt/shardflow/deploy/kubernetes/scale-hook.sh", "{tier}", "{count}", "{nodes}"] }
# or with `shardflow autoscale --hook "/opt/shardflow/deploy/kubernetes/scale-hook.sh {tier} {count} {nodes}"`.
#
# The protocol (src/cluster/provisioner-command.ts): shardflow runs the hook without a shell.
#   scale-out: `hook TIER COUNT ""`      -> start nodes; shardflow then waits for COUNT ready nodes of TIER in
#                                            membership and (storage) moves data onto the new ones itself.
#   scale-in:  `hook TIER COUNT A,B,...` -> shardflow has ALREADY moved every partition off A,B,... (storage);
#                                            the hook must stop exactly those nodes (SIGTERM), then shardflow waits
#                                            for them to leave membership.
# The same values are in SHARDFLOW_TIER, SHARDFLOW_COUNT, SHARDFLOW_FROM, SHARDFLOW_NODES, SHARDFLOW_REASON.
# The last line this hook prints on stdout is shown in the autoscaler's decision.
#
# Node ids are pod names (the manifests pass --id "$(POD_NAME)"), so {nodes} are pod names.
#
# storage (StatefulSet): `kubectl scale` removes the highest ordinals, and shardflow picks the leaving nodes as the
#   newest ids (highest in numeric order) among the READY storage members. Those agree in the normal case, but not
#   if a storage pod is not ready in membership, or if storage nodes outside this StatefulSet are in the cluster.
#   The hook therefore checks that {nodes} are exactly the pods the StatefulSet will remove, and refuses otherwise:
#   scaling down would stop a node that still holds copies. Its partitions would fail over to their followers but
#   run a copy short until re-made elsewhere (never, with as many storage nodes as copies), and those of a one-copy
#   namespace would go offline.
#
# compute (Deployment): a Deployment cannot be told which pods to remove. The hook marks the named pods with the
#   annotation controller.kubernetes.io/pod-deletion-cost (lowest cost goes first), refuses if any pod of the
#   Deployment is not running and ready or a rollout is in progress (the ReplicaSet controller removes such pods
#   BEFORE looking at the cost), scales down by the number of named pods, and then checks that the named pods are
#   the ones terminating. If they are not, it fails with a message; shardflow's own wait would otherwise time out.
#
# Environment (all optional):
#   SHARDFLOW_K8S_NAMESPACE          namespace (default: kubectl's own: the pod's namespace in a cluster)
#   SHARDFLOW_K8S_STORAGE            storage StatefulSet name   (default shardflow-storage)
#   SHARDFLOW_K8S_COMPUTE            compute Deployment name    (default shardflow-compute)
#   SHARDFLOW_K8S_COMPUTE_SELECTOR   label selector of its pods (default app.kubernetes.io/name=shardflow,app.kubernetes.io/component=compute)
#   SHARDFLOW_K8S_VERIFY_SECONDS     how long to wait for the named compute pods to start terminating (default 60)
#   KUBECTL                          kubectl binary (default kubectl)
set -euo pipefail

readonly STORAGE_STS="${SHARDFLOW_K8S_STORAGE:-shardflow-storage}"
readonly COMPUTE_DEPLOY="${SHARDFLOW_K8S_COMPUTE:-shardflow-compute}"
readonly COMPUTE_SELECTOR="${SHARDFLOW_K8S_COMPUTE_SELECTOR:-app.kubernetes.io/name=shardflow,app.kubernetes.io/component=compute}"
readonly VERIFY_SECONDS="${SHARDFLOW_K8S_VERIFY_SECONDS:-60}"
readonly COST_ANNOTATION="controller.kubernetes.io/pod-deletion-cost"

die() {
  echo "scale-hook: $*" >&2
  exit 1
}
say() {
  echo "scale-hook: $*"
}

k() {
  local ns=()
  if [[ -n "${SHARDFLOW_K8S_NAMESPACE:-}" ]]; then ns=(--namespace "$SHARDFLOW_K8S_NAMESPACE"); fi
  "${KUBECTL:-kubectl}" "${ns[@]}" "$@"
}

is_count() { [[ "$1" =~ ^[0-9]+$ ]]; }

# Sorted, one per line, no empties.
sorted_lines() { tr ',' '\n' | sed '/^$/d' | LC_ALL=C sort; }

tier="${1:-${SHARDFLOW_TIER:-}}"
count="${2:-${SHARDFLOW_COUNT:-}}"
# On scale-out shardflow passes {nodes} as an empty argument.
nodes="${3-${SHARDFLOW_NODES:-}}"

[[ $# -le 3 ]] || die "usage: scale-hook.sh {tier} {count} {nodes} (got $# arguments)"
is_count "$count" || die "count must be a whole number, got '${count}'"

leaving=()
if [[ -n "$nodes" ]]; then
  mapfile -t leaving < <(printf '%s' "$nodes" | sorted_lines)
  for id in "${leaving[@]}"; do
    # Pod names are DNS-1123 labels; shardflow ids are [A-Za-z0-9_.-]. Refuse anything else before it reaches kubectl.
    [[ "$id" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "node id '${id}' is not a pod name; these manifests use the pod name as the node id"
  done
fi

# ---------------------------------------------------------------------------------------------------------------
scale_storage() {
  local current start
  current="$(k get statefulset "$STORAGE_STS" -o 'jsonpath={.spec.replicas}')" || die "cannot read statefulset/${STORAGE_STS}"
  is_count "$current" || die "statefulset/${STORAGE_STS} has no .spec.replicas (got '${current}')"
  # Absent unless the StatefulSet sets .spec.ordinals (Kubernetes >= 1.26): ordinals then start there, not at 0.
  start="$(k get statefulset "$STORAGE_STS" -o 'jsonpath={.spec.ordinals.start}')" || start=""
  start="${start:-0}"
  is_count "$start" || die "statefulset/${STORAGE_STS} has an unexpected .spec.ordinals.start '${start}'"

  if [[ ${#leaving[@]} -eq 0 ]]; then
    # Scale-out. Never lower replicas here: a pod that exists but is not ready in membership may still hold copies
    # (or the only copy of a one-copy namespace's partitions), and removing it would leave them short or offline.
    if (( count <= current )); then
      say "statefulset/${STORAGE_STS} already has ${current} replicas (asked for ${count}); not changing it, waiting for its pods to become ready"
      return 0
    fi
    k scale statefulset "$STORAGE_STS" --current-replicas="$current" --replicas="$count" >&2
    say "statefulset/${STORAGE_STS}: ${current} -> ${count} replicas"
    return 0
  fi

  # Scale-in: the StatefulSet removes ordinals start+count .. start+current-1. They must be exactly {nodes}.
  (( count < current )) || die "asked to stop ${nodes} down to ${count} storage nodes, but statefulset/${STORAGE_STS} has only ${current} replicas"
  local expected=() i
  for (( i = start + count; i < start + current; i++ )); do expected+=("${STORAGE_STS}-${i}"); done
  local want got
  want="$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)"
  got="$(printf '%s\n' "${leaving[@]}")"
  if [[ "$want" != "$got" ]]; then
    die "refusing to scale statefulset/${STORAGE_STS} from ${current} to ${count}: it would remove [$(echo "$want" | paste -sd, -)], but shardflow drained and asked to stop [$(echo "$got" | paste -sd, -)]. Scaling anyway would stop a storage node that still holds copies (its partitions would run a copy short, those of a one-copy namespace would go offline). Usual causes: a storage pod that is not ready in membership (see 'shardflow status'), or storage nodes that do not belong to this StatefulSet. Nothing was stopped; the drained node stays up with no partitions: fix the cause and let the autoscaler retry, or run 'shardflow rebalance' to give it data again."
  fi
  k scale statefulset "$STORAGE_STS" --current-replicas="$current" --replicas="$count" >&2
  say "statefulset/${STORAGE_STS}: ${current} -> ${count} replicas, stopping $(echo "$got" | paste -sd, -) (their PVCs are kept)"
}

# ---------------------------------------------------------------------------------------------------------------
compute_pods_report() {
  # name|phase|ready|deletionTimestamp, one pod per line
  k get pods -l "$COMPUTE_SELECTOR" \
    -o 'jsonpath={range .items[*]}{.metadata.name}{"|"}{.status.phase}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"|"}{.metadata.deletionTimestamp}{"\n"}{end}'
}

clear_costs() {
  local id
  for id in "${leaving[@]}"; do
    k annotate pod "$id" "${COST_ANNOTATION}-" >/dev/null 2>&1 || true
  done
}

scale_compute() {
  local current
  current="$(k get deployment "$COMPUTE_DEPLOY" -o 'jsonpath={.spec.replicas}')" || die "cannot read deployment/${COMPUTE_DEPLOY}"
  is_count "$current" || die "deployment/${COMPUTE_DEPLOY} has no .spec.replicas (got '${current}')"

  if [[ ${#leaving[@]} -eq 0 ]]; then
    if (( count <= current )); then
      say "deployment/${COMPUTE_DEPLOY} already has ${current} replicas (asked for ${count}); not changing it, waiting for its pods to become ready"
      return 0
    fi
    k scale deployment "$COMPUTE_DEPLOY" --current-replicas="$current" --replicas="$count" >&2
    say "deployment/${COMPUTE_DEPLOY}: ${current} -> ${count} replicas"
    return 0
  fi

  # Scale-in of named pods.
  local n=${#leaving[@]}
  (( n <= current )) || die "asked to stop ${n} compute pods, but deployment/${COMPUTE_DEPLOY} has ${current} replicas"
  local target=$(( current - n ))
  if (( target != count )); then
    echo "scale-hook: note: deployment/${COMPUTE_DEPLOY} has ${current} replicas; removing the ${n} named pods leaves ${target} (shardflow counts ${count} ready members after this)" >&2
  fi

  # A rollout in progress spreads a scale-down over two ReplicaSets; refuse rather than guess.
  local gen observed updated ready
  gen="$(k get deployment "$COMPUTE_DEPLOY" -o 'jsonpath={.metadata.generation}')"
  observed="$(k get deployment "$COMPUTE_DEPLOY" -o 'jsonpath={.status.observedGeneration}')"
  updated="$(k get deployment "$COMPUTE_DEPLOY" -o 'jsonpath={.status.updatedReplicas}')"
  ready="$(k get deployment "$COMPUTE_DEPLOY" -o 'jsonpath={.status.readyReplicas}')"
  if [[ "$gen" != "$observed" || "${updated:-0}" != "$current" || "${ready:-0}" != "$current" ]]; then
    die "deployment/${COMPUTE_DEPLOY} is not settled (replicas ${current}, updated ${updated:-0}, ready ${ready:-0}, generation ${gen}/${observed}); the ReplicaSet controller would remove unready or old pods before the named ones. Retry when it is settled."
  fi

  # Every pod of the Deployment must be Running and Ready, and every named pod must be one of them.
  local report
  report="$(compute_pods_report)"
  local name phase podready deleting
  declare -A present=()
  while IFS='|' read -r name phase podready deleting; do
    [[ -n "$name" ]] || continue
    if [[ -n "${deleting:-}" ]]; then continue; fi
    if [[ "$phase" != "Running" || "$podready" != "True" ]]; then
      die "pod ${name} of deployment/${COMPUTE_DEPLOY} is ${phase}, ready=${podready:-unknown}; the ReplicaSet controller would remove it before the named pods. Retry when every pod is ready."
    fi
    present["$name"]=1
  done <<<"$report"
  local id
  for id in "${leaving[@]}"; do
    [[ -n "${present[$id]:-}" ]] || die "pod ${id} is not a running pod of deployment/${COMPUTE_DEPLOY} (selector ${COMPUTE_SELECTOR}); it may have gone already, or the node id is not its pod name"
  done

  # Lowest deletion cost goes first; everything else has the default cost 0.
  # From here on, a failure removes the annotations again (the pods stay; the next attempt sets them afresh).
  trap clear_costs EXIT
  for id in "${leaving[@]}"; do
    k annotate --overwrite pod "$id" "${COST_ANNOTATION}=-1000000" >&2
  done
  k scale deployment "$COMPUTE_DEPLOY" --current-replicas="$current" --replicas="$target" >&2

  # Check that the controller chose the named pods: each must be terminating (or gone) shortly.
  local deadline=$(( SECONDS + VERIFY_SECONDS )) pending
  while :; do
    pending=()
    report="$(compute_pods_report)"
    for id in "${leaving[@]}"; do
      # Still listed and without a deletionTimestamp: not chosen (yet).
      if awk -F'|' -v id="$id" '$1 == id && $4 == "" { found = 1 } END { exit !found }' <<<"$report"; then pending+=("$id"); fi
    done
    (( ${#pending[@]} == 0 )) && break
    if (( SECONDS >= deadline )); then
      die "deployment/${COMPUTE_DEPLOY} was scaled ${current} -> ${target}, but after ${VERIFY_SECONDS}s these named pods are not terminating: ${pending[*]}. The ReplicaSet controller removed other pods (is pod-deletion-cost honoured by this cluster? it needs Kubernetes >= 1.22). shardflow will time out waiting for them to leave; stop them by hand: kubectl delete pod ${pending[*]} && kubectl scale deployment ${COMPUTE_DEPLOY} --replicas=${target}"
    fi
    sleep 2
  done
  trap - EXIT
  say "deployment/${COMPUTE_DEPLOY}: ${current} -> ${target} replicas, stopping $(printf '%s\n' "${leaving[@]}" | paste -sd, -)"
}

case "$tier" in
  storage) scale_storage ;;
  compute) scale_compute ;;
  *) die "tier must be storage or compute, got '${tier}'" ;;
esac
