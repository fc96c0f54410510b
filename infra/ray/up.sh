#!/usr/bin/env bash
# Start or update the AWS Ray cluster with this project installed at the current commit.
#
#   bash infra/ray/up.sh [extra `ray up` flags]
#
# `git archive HEAD` (committed files only, no data, no .git) goes to infra/ray/.build with the
# commit id; cluster-aws.yaml mounts that folder on every node and its setup_commands install it.
# Uncommitted changes are not installed on the nodes; `dpsrgan submit` ships them with each job.
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=$(git rev-parse HEAD)
if ! git diff --quiet HEAD --; then
  echo "up.sh: uncommitted changes are not installed on the cluster (installing ${commit:0:12})" >&2
fi
build=infra/ray/.build
rm -rf "$build" && mkdir -p "$build"
git archive --format=tar.gz -o "$build/dpsrgan.tar.gz" "$commit"
echo "$commit" > "$build/COMMIT"
exec ray up -y infra/ray/cluster-aws.yaml "$@"
