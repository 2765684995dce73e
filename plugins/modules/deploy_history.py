#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: deploy_history
short_description: Hash-binned releases with an atomic active link, a deploy history and rollback
version_added: 0.1.0
description:
  - Keeps every release of a service under C(<root>/deploys/<service>/<release>), where a release
    is named by its git commit id or by the SHA-256 of its content, and points the active link
    (default C(<root>/<service>)) at one of them. The link is switched by renaming a new link over
    the old one, so readers never see a missing or half-written link.
  - A release is built in C(.<release>.partial) (with a marker file) and renamed into place only
    once complete, so an interrupted run never leaves a half release visible, let alone active.
    The next run removes leftovers of interrupted runs.
  - Every action is appended to C(<root>/deploys/<service>/history.jsonl) (one JSON object per
    line, fsync'ed) with the time (UTC), action, release, ref, user and the previously active
    release. This log, never file mtimes or ctimes, decides which release was active before the
    current one and which releases are the oldest when pruning.
  - Git sources are fetched into one bare mirror per service (C(.mirror.git)); a release is
    written from the mirror with C(git read-tree -u) and a private index into a clean tree
    without C(.git).
  - Runs for the same service are serialised with a lock file (C(.lock)). Everything a killed run
    leaves beside a release (C(.partial) trees, the private index and git's C(.index.lock) for it,
    temporary links, stamps, lock files in the mirror) is removed by the next run under that lock.
  - Only directories that look like releases are releases, that is full commit ids, content hashes
    (16 hex digits), names recorded in the history, or a named release whose run was killed before
    its history line. Anything else under C(<root>/deploys/<service>) (say C(shared/)) is reported
    in RV(foreign) and a warning, and is never adopted, pruned or removed.
  - Modes do not depend on the umask of the caller (directories C(0755), checked-out files C(0644)
    or C(0755)).
requirements:
  - python >= 3.7
  - git, for O(repo)
author:
  - commons.infra maintainers (@commons-infra)
options:
  root:
    description:
      - Base directory, for example C(/opt/openlibrary). Releases go to C(<root>/deploys/<service>).
      - Must be an absolute path.
    type: path
    required: true
  service:
    description:
      - Name of the service. Must be a plain name (letters, digits, C(. _ + @ -), no leading dot).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the release exists without switching the active link.
      - V(active) makes sure the release exists and is the active one. When it already is,
        nothing is written, not even a history line.
      - V(rollback) switches back to the release that was active before the current one, as
        recorded in the history, or to the release named in O(release). The release rolled back
        from is kept. Rolling back twice without O(release) returns to where you started.
      - V(query) only reports the active and previous release, the releases and unfinished runs.
      - V(absent) removes the release named in O(release). The active release is refused.
    type: str
    choices: [present, active, rollback, query, absent]
    default: present
  repo:
    description:
      - Git repository URL or path on the target. The release name is the full commit id of
        O(version).
      - Mutually exclusive with O(src_dir) and O(src_archive).
    type: str
  version:
    description:
      - Branch, tag or commit id (full or abbreviated) in O(repo). Resolved to a full commit id,
        with C(git ls-remote) where possible, so check mode resolves it too.
      - A full commit id that is already a release, or already in the mirror, is used without
        contacting the remote, so re-asserting a pinned release works while the remote is down.
      - Defaults to V(HEAD) of O(repo). Only valid with O(repo).
    type: str
  src_dir:
    description:
      - Directory on the target whose content becomes the release. Symlinks are copied as links.
      - The release is named O(release) or else after the SHA-256 of the tree (16 hex digits).
    type: path
  src_archive:
    description:
      - Tar (optionally gzip, bzip2 or xz compressed) or zip archive on the target, extracted as
        the release, the same way on every Python version.
      - Members that would escape the release directory (absolute or C(..) paths, a member below a
        symlink of the archive, a symlink pointing out of the release, a hard link to anything but an
        earlier file, devices and fifos) are refused before anything is written. Setuid, setgid and
        sticky bits and the owners recorded in the archive are not kept; use O(owner) and O(group).
      - A corrupt or truncated archive fails the task naming it.
      - The release is named O(release) or else after the SHA-256 of the archive (16 hex digits).
    type: path
  release:
    description:
      - Explicit release name. With O(state=rollback) the release to roll back to, with
        O(state=absent) the release to remove, with O(state=active) and no source an existing
        release to activate, and with O(src_dir) or O(src_archive) the name of the new release.
      - A unique prefix of at least 4 characters selects an existing release.
      - Releases are immutable; an existing release of the same name is never overwritten.
    type: str
  keep:
    description:
      - Number of releases to keep; the oldest by first deployment in the history are removed
        after a V(present), V(active) or V(rollback) run. The active release, the previous one and
        the release this run is about are never removed, so more may remain.
      - At least 2. Omit or set to V(null) to keep every release.
    type: int
  active_link:
    description:
      - Path of the link pointing at the active release. Defaults to C(<root>/<service>).
      - Must not be inside C(<root>/deploys).
    type: path
  by:
    description:
      - Who deployed, recorded in the history. Defaults to E(SUDO_USER), E(USER) or E(LOGNAME) on the target.
    type: str
  owner:
    description:
      - User name or uid that owns the files of a newly built release.
    type: str
  group:
    description:
      - Group name or gid that owns the files of a newly built release.
    type: str
  history_lines:
    description:
      - Number of history entries to return. V(0) returns none, V(-1) the full history.
    type: int
    default: 10
  lock_timeout:
    description:
      - Seconds to wait for another run on the same service to finish.
    type: int
    default: 300
  sync:
    description:
      - Flush the new release to disk (C(syncfs)) before it becomes visible, so that the link can
        not point at empty files after a power loss.
    type: bool
    default: true
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Refs are still resolved with C(git ls-remote); nothing is fetched or written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - The diff shows the target of the active link before and after.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - Git submodules and LFS objects are not materialised.
  - Requires C(git) on the target for O(repo).
  - The history is the source of truth for order; do not edit releases or the link by hand. If
    you do, or a run was killed between a change and its history line, the next run records what
    it finds with C(reconciled=true) entries. Releases already on disk without any history (for
    example made by an earlier script) are adopted that way in name order, as older than anything
    deployed afterwards, if they are named by a full commit id or a content hash.
  - A history line that is not a deploy history entry (for example a list where a release name
    belongs) fails the task naming the file and the line.
  - Rolling back to a release does not re-fetch anything; releases are immutable once complete.
seealso:
  - module: community.general.deploy_helper
'''

EXAMPLES = r'''
- name: Deploy and activate the tip of the production branch, keep five releases
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: olsystem
    repo: https://github.com/internetarchive/olsystem.git
    version: production
    state: active
    keep: 5

- name: Stage a tagged release without switching
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: openlibrary
    repo: https://github.com/internetarchive/openlibrary.git
    version: deploy-2026-01-15
    state: present

- name: Roll back to the release that was active before
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: olsystem
    state: rollback

- name: Roll back to a named release (a unique prefix is enough)
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: olsystem
    state: rollback
    release: 3f2a9c1e

- name: Deploy a build artefact, owned by the application user
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: static
    src_archive: /tmp/static-build.tar.gz
    state: active
    owner: openlibrary
    group: openlibrary

- name: What is deployed?
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: olsystem
    state: query
    history_lines: -1
  register: olsystem

- name: Remove a release that is known bad
  commons.infra.deploy_history:
    root: /opt/openlibrary
    service: olsystem
    state: absent
    release: 3f2a9c1e0b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f
'''

RETURN = r'''
service:
  description: The service name.
  returned: always
  type: str
  sample: olsystem
release:
  description: Release this run was about (the one deployed, activated, rolled back to or removed; the active one for O(state=query)).
  returned: always
  type: str
  sample: 3f2a9c1e0b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f
path:
  description:
    - Directory of RV(release).
    - As for file modules, C(state), C(uid), C(gid), C(owner), C(group), C(mode) and C(size) of this
      directory are returned too when it exists.
  returned: always
  type: str
  sample: /opt/openlibrary/deploys/olsystem/3f2a9c1e0b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f
active:
  description: Release the active link points at after the run, or null.
  returned: always
  type: str
  sample: 3f2a9c1e0b7d4e5f6a7b8c9d0e1f2a3b4c5d6e7f
active_link:
  description: Path of the active link.
  returned: always
  type: str
  sample: /opt/openlibrary/olsystem
active_target:
  description: Raw target of the active link after the run, or null when there is no link.
  returned: always
  type: str
previous:
  description: Release that was active before the active one, from the history, or null.
  returned: always
  type: str
  sample: 9b1d2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c
releases:
  description: Complete releases on disk, oldest first by first deployment in the history.
  returned: always
  type: list
  elements: dict
  contains:
    release:
      description: Release name.
      type: str
    path:
      description: Release directory.
      type: str
    active:
      description: Whether it is the active release.
      type: bool
    previous:
      description: Whether it is the previous release.
      type: bool
    first_deployed:
      description: Time (ISO 8601, UTC) of its first appearance in the history since it was last removed.
      type: str
    last_activated:
      description: Time (ISO 8601, UTC) it was last activated or rolled back to, or null.
      type: str
    ref:
      description: Ref it was deployed from, or null.
      type: str
    source:
      description: Repository (credentials removed), directory or archive it came from.
      type: str
history:
  description:
    - The last O(history_lines) history entries after the run (all with O(history_lines=-1)).
    - Each has C(time), C(action) (present, activate, rollback, absent, prune), C(release), C(ref),
      C(by), C(previous) and optionally C(source) and C(reconciled).
  returned: always
  type: list
  elements: dict
unfinished:
  description: Leftovers of interrupted runs found before this run (partial releases, releases being removed, temporary links).
  returned: always
  type: list
  elements: dict
foreign:
  description: Entries under C(<root>/deploys/<service>) that are not releases made by this module; left alone.
  returned: always
  type: list
  elements: str
  sample: [/opt/openlibrary/deploys/olsystem/shared]
cleaned:
  description: Leftover paths removed (or, in check mode, that would be removed).
  returned: always
  type: list
  elements: str
pruned:
  description: Releases removed (or that would be removed) because of O(keep).
  returned: always
  type: list
  elements: str
removed:
  description: Release removed by O(state=absent), or null.
  returned: always
  type: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.commons.infra.plugins.module_utils.deploy_history import DeployHistoryError, run
from ansible_collections.commons.infra.plugins.module_utils.fs_rules import describe_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type='path', required=True),
            service=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'active', 'rollback', 'query', 'absent']),
            repo=dict(type='str'),
            version=dict(type='str'),
            src_dir=dict(type='path'),
            src_archive=dict(type='path'),
            release=dict(type='str'),
            keep=dict(type='int'),
            active_link=dict(type='path'),
            by=dict(type='str'),
            owner=dict(type='str'),
            group=dict(type='str'),
            history_lines=dict(type='int', default=10),
            lock_timeout=dict(type='int', default=300),
            sync=dict(type='bool', default=True),
        ),
        mutually_exclusive=[('repo', 'src_dir', 'src_archive')],
        required_if=[('state', 'absent', ['release'])],
        supports_check_mode=True,
    )
    params = dict(module.params)
    git = module.get_bin_path('git', required=bool(params['repo'])) or 'git'
    try:
        result = run(params, check_mode=module.check_mode, git_executable=git)
    except DeployHistoryError as e:
        module.fail_json(msg=e.msg, **e.details)
    except Exception as e:  # pylint: disable=broad-except
        # Last resort: a clean failure naming the path, the traceback kept for -vvv.
        module.fail_json(msg='deploy_history failed: %s' % describe_error(e), exception=traceback.format_exc())
    for warning in result.pop('warnings', []):
        module.warn(warning)
    if not module._diff:
        result.pop('diff', None)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
