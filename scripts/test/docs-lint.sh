#!/usr/bin/env bash
# The docs and release step of `make test`:
#  1. antsibull-docs lint-collection-docs --plugin-docs and antsibull-changelog lint;
#     docs/ansible.cfg.example is valid for the pinned ansible-core;
#  2. `make docs` (scripts/docs.sh): every page builds, 0 Sphinx warnings;
#  3. `make release` (scripts/release.sh) in a copy of the checkout (a release consumes
#     the changelog fragments), which also checks the tarball's file list and runs
#     `ansible-builder create`;
#  4. the tarball installed with `ansible-galaxy collection install` into an empty path
#     (dependencies from the `ansible` package, offline), where `ansible-doc -l` must
#     list every module, filter and role the checkout has;
#  5. ansible-builder's introspection of that installed copy finds the controller's
#     Python and system packages (meta/execution-environment.yml).
set -euo pipefail
source "$(dirname "$0")/../release-tools.sh"
cd "$root"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== antsibull-docs lint-collection-docs --plugin-docs"
antsibull-docs lint-collection-docs --plugin-docs .cache/pypath/ansible_collections/commons/infra
echo "== antsibull-changelog lint"
antsibull-changelog lint

echo "== docs/ansible.cfg.example"
# Every key is one ansible-core knows, and each of its settings takes effect.
cp docs/ansible.cfg.example "$work/ansible.cfg"
ANSIBLE_CONFIG=$work/ansible.cfg ansible-config validate
settings=$(ANSIBLE_CONFIG=$work/ansible.cfg ansible-config dump --only-changed -t base | grep -F "($work/ansible.cfg)" || true)
echo "$settings"
for setting in DEFAULT_GATHERING CACHE_PLUGIN CACHE_PLUGIN_CONNECTION CACHE_PLUGIN_TIMEOUT ANSIBLE_PIPELINING; do
  grep -q "^$setting(" <<<"$settings" || { echo "docs/ansible.cfg.example does not set $setting" >&2; exit 1; }
done

echo "== make docs"
DOCS_OUTPUT=$work/docs DOCS_BUILD=$work/docs-build scripts/docs.sh

echo "== make release (in a copy of the checkout)"
copy=$(COLLECTION_COPY_ROOT=$work/copy scripts/test/collection-copy.sh)
mkdir -p "$copy/.cache"
ln -s "$root/.venv" "$copy/.venv"
ln -s "$release_venv" "$copy/.cache/release-venv"
tarball=$copy/$("$copy/scripts/release.sh" | tail -n 1)
echo "built $(basename "$tarball"), $(tar -tzf "$tarball" | wc -l) entries, nothing for development only"
grep -q '^FROM ' "$copy/dist/ee-context/Dockerfile" || { echo "ansible-builder create wrote no Dockerfile" >&2; exit 1; }
echo "ansible-builder create: build context in dist/ee-context"

echo "== install the tarball into an empty path, list it with ansible-doc"
installed=$work/installed
ANSIBLE_COLLECTIONS_PATH="$installed:$dependency_collections" \
  ansible-galaxy collection install --offline -p "$installed" "$tarball" >/dev/null
[ -f "$installed/ansible_collections/commons/infra/MANIFEST.json" ] || { echo "nothing installed" >&2; exit 1; }
# What the checkout has: module files, the filters the filter plugins expose, role directories.
expected=$(python - <<'PY'
import glob, importlib, os, sys
sys.path.insert(0, '.cache/pypath')
for path in sorted(glob.glob('plugins/modules/*.py')):
    if not os.path.basename(path).startswith('_'):
        print('module commons.infra.' + os.path.basename(path)[:-3])
for path in sorted(glob.glob('plugins/filter/*.py')):
    plugin = importlib.import_module('ansible_collections.commons.infra.plugins.filter.' + os.path.basename(path)[:-3])
    for name in sorted(plugin.FilterModule().filters()):
        print('filter commons.infra.' + name)
for path in sorted(glob.glob('roles/*/meta/argument_specs.yml')):
    print('role commons.infra.' + path.split('/')[1])
PY
)
listed=$(for kind in module filter role; do
  ANSIBLE_COLLECTIONS_PATH="$installed:$dependency_collections" ansible-doc -t "$kind" -l commons.infra |
    awk -v kind="$kind" '/^commons\.infra\./ {sub(/:$/, "", $1); print kind, $1}'
done)
absent=$(comm -23 <(sort <<<"$expected") <(sort <<<"$listed"))
if [ -n "$absent" ]; then
  echo "ansible-doc -l does not list these from the installed tarball:" >&2
  echo "$absent" >&2
  exit 1
fi
for kind in module filter role; do
  printf 'ansible-doc -t %s -l commons.infra: %d listed, every one the checkout has\n' "$kind" "$(grep -c "^$kind " <<<"$listed")"
done
echo "== what ansible-builder reads from the installed collection (meta/execution-environment.yml)"
introspect=$(python -c 'import ansible_builder, os; print(os.path.dirname(ansible_builder.__file__))')/_target_scripts/introspect.py
ee_needs=$(python "$introspect" introspect "$installed")
echo "$ee_needs"
for need in jmespath netaddr psycopg2-binary git openssh-client; do
  grep -qE "^- '$need[ >=\[].*# from collection commons\.infra'" <<<"$ee_needs" ||
    { echo "ansible-builder would not install $need for commons.infra" >&2; exit 1; }
done
echo "docs-lint: 6 passed, 0 failed"
