# Sourced by scripts/release.sh, scripts/docs.sh and scripts/test/docs-lint.sh: the
# pinned release and docs tools (requirements-release.txt) in .cache/release-venv,
# reinstalled when that file changes, first on PATH; the collection on the
# collections path (.cache/pypath, as `make collection` links it) beside the
# collections it depends on (the `ansible` package in .venv: Galaxy is not reachable).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
release_venv=$root/.cache/release-venv
release_requirements=$root/requirements-release.txt
release_stamp=$release_venv/.requirements.sha256
if ! sha256sum --status -c "$release_stamp" 2>/dev/null; then
  echo "release tools: installing $(basename "$release_requirements") into ${release_venv#"$root"/}" >&2
  python3 -m venv "$release_venv"
  "$release_venv/bin/pip" install -q --disable-pip-version-check -r "$release_requirements" >&2
  sha256sum "$release_requirements" >"$release_stamp"
fi
mkdir -p "$root/.cache/pypath/ansible_collections/commons"
ln -sfn "$root" "$root/.cache/pypath/ansible_collections/commons/infra"
# Where the `ansible` package of .venv keeps the collections galaxy.yml depends on.
dependency_collections=$("$root/.venv/bin/python" -c \
  'import ansible_collections, os; print(os.path.dirname(list(ansible_collections.__path__)[-1]))')
export PATH="$release_venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$root/.cache/pypath:$dependency_collections"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
collection_version=$("$release_venv/bin/python" -c \
  'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' "$root/galaxy.yml")
