#!/bin/sh
# Build a git repository of demo_web with three releases, for the app_release tests:
#   v1    the application as it is here (VERSION 1)
#   v2    a commit that changes VERSION to 2            (branch main ends here)
#   v3    a commit with a real bug: app.py imports a settings module that was never
#         committed, so the application exits at start-up    (branch next)
# Usage: make_demo_repo.sh DEST   (DEST must not exist yet; prints the three commit ids)
set -eu
dest=$1
here=$(cd "$(dirname "$0")" && pwd)
if [ -e "$dest" ]; then
    echo "make_demo_repo.sh: $dest exists" >&2
    exit 1
fi
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
mkdir -p "$dest"
cp -R "$here/demo_web/." "$dest/"
cd "$dest"
git init -q -b main .
git add -A
git commit -q -m "demo_web 1"
git tag v1
echo 2 > VERSION
git commit -q -am "demo_web 2"
git tag v2
git checkout -q -b next
sed -i 's/^import socket$/import socket\nimport demo_web_settings  # settings moved to their own module/' app.py
grep -q '^import demo_web_settings' app.py
echo 3 > VERSION
git commit -q -am "demo_web 3: read settings from demo_web_settings"
git tag v3
git checkout -q main
for tag in v1 v2 v3; do
    echo "$tag $(git rev-parse "$tag^{commit}")"
done
