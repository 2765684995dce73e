#!/usr/bin/env bash
# Copy the files git would ship (tracked + untracked, not ignored) into
# an ansible_collections/commons/infra tree: ansible-test must run from a
# directory with that shape, and a copy keeps .venv and .cache out of it.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Outside the checkout: ansible-test lists files with git, and would see the
# checkout (where .cache is ignored) instead of the copy.
dest=${COLLECTION_COPY_ROOT:-/tmp/commons-infra-collection-$(pwd | md5sum | cut -c1-8)}/ansible_collections/commons/infra
rm -rf "$dest"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -C "$dest" -xf -
echo "$dest"
