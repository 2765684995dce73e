#!/usr/bin/env bash
# `make release`: release galaxy.yml's version.
#  1. antsibull-changelog lint + release: changelogs/fragments/ become the version's
#     section of changelogs/changelog.yaml and CHANGELOG.rst (the fragments are
#     consumed: commit the result). Releasing a version again adds new fragments to it.
#  2. ansible-galaxy collection build into dist/ (earlier tarballs there removed), and
#     the tarball's file list checked: nothing a checkout holds only for developing
#     and testing the collection (galaxy.yml's build_ignore) may be inside.
#  3. ansible-builder create: the execution environment's build context in
#     dist/ee-context (execution-environment.yml; `ansible-builder build` needs a registry).
# Prints the tarball's path last.
set -euo pipefail
source "$(dirname "$0")/release-tools.sh"
cd "$root"

antsibull-changelog lint
antsibull-changelog release --version "$collection_version"

mkdir -p dist
rm -f dist/commons-infra-*.tar.gz
ansible-galaxy collection build --output-path dist >/dev/null
tarball=dist/commons-infra-$collection_version.tar.gz
files=$(tar -tzf "$tarball")
# Test trees, lab and CI files, caches, virtualenvs, molecule's and ansible-test's state,
# dotfiles at the top.
dev_dirs='tests|molecule|\.molecule|\.cache|\.venv|\.git|\.github|\.ci|\.config|\.ansible|\.pytest_cache|__pycache__'
dev_dirs+='|dist|bench|scripts|inventory/lab'
leaks=$(grep -E "(^|/)($dev_dirs)(/|\$)|\.(pyc|tar\.gz|retry)\$|^\.[^/]+\$" <<<"$files" || true)
if [ -n "$leaks" ]; then
  echo "$tarball holds files that are for development only (add them to galaxy.yml's build_ignore):" >&2
  echo "$leaks" >&2
  exit 1
fi
for required in MANIFEST.json CHANGELOG.rst changelogs/changelog.yaml meta/runtime.yml \
  meta/execution-environment.yml requirements.txt bindep.txt README.md; do
  grep -qx "$required" <<<"$files" || { echo "$tarball lacks $required" >&2; exit 1; }
done

rm -rf dist/ee-context
ansible-builder create -f execution-environment.yml -c dist/ee-context >/dev/null
echo "$tarball"
