# Run by tasks/shared_links.yml as `python3 -c` on the host: reports, for each shared
# link, where its parent really is (a link shipped in the release may lead out of it),
# what the release has at its path and whether the target exists. Only reads.
import json
import os
import sys

request = json.loads(sys.argv[1])
release = os.path.realpath(request['release'])
report = {'release': release, 'links': []}
for link in request['links']:
    path = os.path.join(request['release'], link['path'])
    parent = os.path.realpath(os.path.dirname(path))
    if os.path.islink(path):
        kind = 'link'
    elif os.path.isdir(path):
        kind = 'directory'
    elif os.path.lexists(path):
        kind = 'file'
    else:
        kind = 'absent'
    report['links'].append({
        'path': link['path'],
        'target': link['target'],
        'inside': parent == release or parent.startswith(release + os.sep),
        'parent_exists': os.path.isdir(os.path.dirname(path)),
        'kind': kind,
        'linked': kind == 'link' and os.readlink(path) == link['target'],
        'target_exists': os.path.exists(link['target']),
        'create': bool(link.get('create')),
        'owner': link.get('owner'),
        'group': link.get('group'),
        'mode': link.get('mode'),
    })
json.dump(report, sys.stdout)
