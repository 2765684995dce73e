# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a Sphinx inventory (objects.inv) for the references the docs make out of commons.infra.

The pages antsibull-docs writes refer to other collections' plugins (M(ansible.builtin.git),
P(ansible.utils.ipaddr#filter)) and to pages of Ansible's own docs by Sphinx label.
intersphinx would download docs.ansible.com's inventory; offline, this script writes one
for exactly the labels the pages use, each checked first: a plugin must exist in the
installed ansible-core or dependency collection, a docs page must be one listed below.
Anything else is left out, so Sphinx (nitpicky, -W) fails on it.

Usage: external_refs.py RST_DIR COLLECTIONS_DIR OUTPUT   (prints one line per label it left out)
"""

from __future__ import absolute_import, division, print_function

import glob
import os
import re
import sys
import zlib

import ansible

DOCS = 'https://docs.ansible.com/ansible/latest/'
# Labels of Ansible's own docs pages that antsibull-docs' templates link to.
DOCS_PAGES = {
    'common_return_values': ('reference_appendices/common_return_values.html', 'Return Values'),
    'ansible_configuration_settings': ('reference_appendices/config.html', 'Ansible Configuration Settings'),
    'playbooks_filters': ('playbook_guide/playbooks_filters.html', 'Using filters to manipulate data'),
    'action_plugins': ('plugins/action.html', 'Action plugins'),
}
PLUGIN_LABEL = re.compile(r'^ansible_collections\.([a-z0-9_]+)\.([a-z0-9_]+)\.([a-z0-9_]+)_([a-z]+)$')


def plugin_exists(namespace, collection, name, kind, collections_dir):
    if (namespace, collection) == ('ansible', 'builtin'):
        base = os.path.dirname(ansible.__file__)
        roots = [os.path.join(base, 'modules')] if kind == 'module' else [os.path.join(base, 'plugins', kind)]
    else:
        path = os.path.join(collections_dir, 'ansible_collections', namespace, collection)
        roots = [os.path.join(path, 'roles', name, 'meta')] if kind == 'role' else \
            [os.path.join(path, 'plugins', kind + 's' if kind == 'module' else kind)]
    return any(glob.glob(os.path.join(root, pattern))
               for root in roots for pattern in (name + '.py', name + '.yml', 'argument_specs.yml'))


def main():
    rst_dir, collections_dir, output = sys.argv[1:4]
    ours = set()
    used = set()
    for page in glob.glob(os.path.join(rst_dir, '*.rst')):
        with open(page) as handle:
            text = handle.read()
        ours.update(re.findall(r'^\.\. _([^:]+):$', text, re.M))
        used.update(re.findall(r':ref:`(?:[^`<]*<)?([^`<>]+?)>?`', text))
    entries, missing = [], []
    for label in sorted(used - ours):
        match = PLUGIN_LABEL.match(label)
        if match and match.group(1, 2) != ('commons', 'infra') and plugin_exists(*(match.groups() + (collections_dir,))):
            namespace, collection, name, kind = match.groups()
            uri = 'collections/%s/%s/%s_%s.html' % (namespace, collection, name, kind)
            entries.append((label, uri, '%s.%s.%s %s' % (namespace, collection, name, kind)))
        elif label in DOCS_PAGES:
            entries.append((label,) + DOCS_PAGES[label])
        else:
            missing.append(label)
    body = ''.join('%s std:label -1 %s %s\n' % entry for entry in entries)
    with open(output, 'wb') as handle:
        handle.write(b'# Sphinx inventory version 2\n# Project: Ansible\n# Version: latest\n'
                     b'# The remainder of this file is compressed using zlib.\n')
        handle.write(zlib.compress(body.encode('utf-8')))
    for label in missing:
        print(label)


if __name__ == '__main__':
    main()
