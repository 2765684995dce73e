"""Make the collection importable as ansible_collections.commons.infra for plain pytest.

ansible-test runs from an ansible_collections/commons/infra tree and needs
nothing; `make units` runs pytest on the checkout, so a symlink tree under
.cache points the namespace at it.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))

if os.path.basename(os.path.dirname(os.path.dirname(ROOT))) == 'ansible_collections':
    sys.path.insert(0, COLLECTIONS_ROOT)
else:
    pypath = os.path.join(ROOT, '.cache', 'pypath')
    link = os.path.join(pypath, 'ansible_collections', 'commons', 'infra')
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    sys.path.insert(0, pypath)
