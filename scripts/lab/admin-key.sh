#!/usr/bin/env bash
# The lab's admin ssh key (inventory/lab/group_vars/all.yml lists its public half
# for the `admin` account): made once, kept in .cache/lab, never committed.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .cache/lab
[ -s .cache/lab/admin_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C commons-infra-lab -f .cache/lab/admin_ed25519
