#!/usr/bin/env bash
# `make docs`: the collection's docs site, static HTML in dist/docs/ (open
# dist/docs/index.html). antsibull-docs writes one page per module, filter and role
# entry point from their own documentation (DOCUMENTATION, the filters' .yml,
# meta/argument_specs.yml), found in the checkout as it is: a new plugin or role
# appears without a list to edit. Sphinx builds it offline with warnings as errors
# (docs/sphinx/conf.py); references to other collections resolve through an
# inventory written from the installed ansible-core and dependency collections.
set -euo pipefail
source "$(dirname "$0")/release-tools.sh"
cd "$root"
build=${DOCS_BUILD:-.cache/docs-build}
site=${DOCS_OUTPUT:-dist/docs}
rm -rf "$build" "$site"
mkdir -p "$build/rst"
# antsibull-docs wants its output directory writable by its owner only.
chmod og-w "$build/rst"
antsibull-docs collection --use-current --squash-hierarchy --fail-on-error --dest-dir "$build/rst" commons.infra
cp docs/sphinx/conf.py "$build/rst/"
unresolved=$(python docs/sphinx/external_refs.py "$build/rst" "$dependency_collections" "$build/rst/external.inv")
if [ -n "$unresolved" ]; then
  echo "docs: references to nothing antsibull-docs or the installed collections know:" >&2
  echo "$unresolved" >&2
  exit 1
fi
sphinx-build -q -W --keep-going -b html "$build/rst" "$site"
pages=$(find "$site" -maxdepth 1 -name '*_module.html' -o -maxdepth 1 -name '*_filter.html' -o -maxdepth 1 -name '*_role.html' | wc -l)
echo "docs: $site/index.html ($pages plugin and role pages, 0 warnings)"
