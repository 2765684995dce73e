#!/usr/bin/env bash
# ansible-test sanity, offline: it runs from a copy of the collection and uses
# virtualenvs of its own (cached under ~/.ansible/test). Its pip bootstrap
# downloads get-pip.py from the internet, which is unreachable here; a stand-in
# that uses ensurepip is put in its cache first (see ../shared/LAB-NOTES.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=$("$root/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
# The pip version ansible-test bootstraps, read from ansible-test itself.
pip_version=$(grep -oP "pip='\K[0-9.]+" "$("$root/.venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -n 1)
standin="$cache/get_pip_${pip_version//./_}.py"
cat >"$standin" <<'PY'
# Stand-in for get-pip.py (no internet here): bootstrap pip with ensurepip, then
# install what ansible-test asked for from the configured package index. The
# --no-setuptools/--no-wheel switches belong to get-pip, not to pip install.
import subprocess
import sys
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--upgrade'] + args)
PY
dest=$("$root/scripts/test/collection-copy.sh")
cd "$dest"
exec "$root/.venv/bin/ansible-test" sanity --venv --python "$python" --color no "$@"
