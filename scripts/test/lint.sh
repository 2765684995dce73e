#!/usr/bin/env bash
# yamllint over the tree, then ansible-lint with the production profile (offline).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/pypath" ANSIBLE_ROLES_PATH="$PWD/roles"
yamllint -s .
ansible-lint --offline --profile production --nocolor
