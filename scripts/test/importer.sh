#!/usr/bin/env bash
# Build the collection tarball and run Galaxy's importer on it, offline. The
# importer pins old flake8/attrs, so it lives in a virtualenv of its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=.cache/importer-venv
importer_version=0.4.44
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('galaxy-importer') != '$importer_version')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "galaxy-importer==$importer_version"
fi
dist=.cache/dist
rm -rf "$dist" && mkdir -p "$dist"
.venv/bin/ansible-galaxy collection build --output-path "$dist" --force >/dev/null
tarball=$(ls "$dist"/commons-infra-*.tar.gz)
# Nothing that only a checkout has may leak into the artifact.
if tar -tzf "$tarball" | grep -E '(^|/)(\.venv|\.cache|tests/output|__pycache__)/'; then
  echo "the tarball holds files that build_ignore should keep out" >&2
  exit 1
fi
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<'CFG'
[galaxy-importer]
RUN_ANSIBLE_TEST = False
ANSIBLE_TEST_LOCAL_IMAGE = False
LOCAL_IMAGE_DOCKER = False
OFFLINE_ANSIBLE_LINT = True
RUN_ANSIBLE_LINT = True
CHECK_REQUIRED_TAGS = False
CFG
out=$(mktemp)
# It writes importer_result.json into the working directory: keep that in $dist.
# Its ansible-lint must resolve the dependencies galaxy.yml declares: link them
# from the pinned `ansible` package in .venv into the importer's site-packages
# (it sets its own collections path, but ansible also scans sys.path).
src=$("$root/.venv/bin/python" -c 'import ansible_collections; print(list(ansible_collections.__path__)[-1])')
dst=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ansible_collections
for dep in $("$root/.venv/bin/python" -c 'import yaml; print(" ".join(yaml.safe_load(open("galaxy.yml"))["dependencies"]))'); do
  mkdir -p "$dst/${dep%%.*}"
  ln -sfn "$src/${dep%%.*}/${dep#*.}" "$dst/${dep%%.*}/${dep#*.}"
done
(cd "$dist" && PATH="$root/$venv/bin:$PATH" GALAXY_IMPORTER_CONFIG=$cfg "$root/$venv/bin/python" -m galaxy_importer.main "$root/$tarball") 2>&1 | tee "$out"
# The importer exits 0 on lint findings; treat its errors and warnings as failures.
if grep -E '^(ERROR|WARNING)' "$out" | grep -v 'WARNING: could not find ansible-lint' ; then
  echo "galaxy-importer reported problems" >&2
  exit 1
fi
echo "galaxy-importer: $tarball imported cleanly"
