#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, commons.infra maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: etc_symlinks
short_description: Link the files of a config checkout into /etc, layer by layer
version_added: 0.1.0
description:
  - Links every file of one or more source trees (typically directories of a git checkout such as
    C(/opt/openfoodfacts-infrastructure/confs/common) and C(.../confs/off2), or C(olsystem/etc)) into
    O(dest), so that updating the configuration is a C(git pull).
  - Sources are layers in precedence order; when two layers hold the same relative path, the later one wins.
  - Parent directories are created as real directories. Links are replaced atomically (a temporary link
    renamed over the old one), so no destination path is ever missing, even if the run is killed.
  - The whole plan is computed before the first write; any refusal (bad input, a secret, a symlink leaving
    its layer, a conflict in V(error) mode) fails the task with every problem named and nothing changed.
  - Paths listed in O(copy) are copied instead of linked, for places where symlinks do not work, such as
    the Proxmox C(/etc/pve) FUSE view. With O(state=capture) the live copies are written back into the
    checkout so they can be committed.
  - Temporary links left by an interrupted run are removed on the next run. Runs on the same O(dest) are
    serialised with an C(flock) on the O(dest) directory itself (nothing is written for it).
  - Directories are never removed or replaced by this module, nor are symlinks to directories (such as the
    C(qemu-server), C(lxc) and C(local) links pmxcfs keeps in C(/etc/pve)). Copies are written through a
    symlinked directory that resolves inside O(dest); links through one, or copies through one that leads
    out of O(dest), fail the task. Only an older whole-directory link into the sources themselves is treated
    as an entry in the way (see O(conflict)).
  - Modes are set explicitly (copies C(0644) unless given or kept, new directories C(0755)), whatever the umask.
requirements:
  - python >= 3.7
author:
  - commons.infra maintainers (@commons-infra)
options:
  sources:
    description:
      - Absolute paths of the source trees (layers), lowest precedence first.
      - Every file and symlink of each tree is linked, recursively. Symlinks inside a tree are linked as
        they are, but a symlink that resolves outside its own tree fails the task.
      - Sources may not overlap each other, nor contain or be inside O(dest).
    type: list
    elements: path
    required: true
  dest:
    description:
      - Absolute path of the existing directory the files are linked into.
    type: path
    default: /etc
  state:
    description:
      - V(link) links (or copies) the sources into O(dest) and prunes stale links.
      - V(capture) copies the live files of the O(copy) paths from O(dest) back into the highest-precedence
        layer that holds them (the last layer for files that are in no layer yet). Nothing under O(dest)
        changes. Live files that match O(secret_patterns) are refused.
    type: str
    choices: [link, capture]
    default: link
  conflict:
    description:
      - What to do when a destination path exists and is not already a link into the sources, that is a
        regular file, a symlink pointing elsewhere, or a non-directory where a directory is needed.
      - V(backup) keeps the existing entry under O(backup_dir) (a symlink is kept as a symlink) and then
        replaces it. Regular files are swapped atomically; a non-directory in the way of a directory is
        moved away before the directory is created.
      - V(error) fails the task before anything is changed.
      - V(replace) replaces the existing entry without keeping it.
      - An existing directory where a file should go always fails the task.
    type: str
    choices: [backup, error, replace]
    default: backup
  conflict_overrides:
    description:
      - Per-path conflict modes, overriding O(conflict).
      - Keys are paths relative to O(dest) (or absolute paths under it) and may be shell globs (C(*), C(?) and
        C([...]) never match C(/); a C(**) component matches any number of directories); a key that names a
        directory covers everything below it. The most specific key wins, so one matching the path itself over
        one matching a parent directory, then an exact key over a glob, then the longer key. O(copy) entries
        follow the same rule.
      - Values are V(backup), V(error) or V(replace).
    type: dict
    default: {}
  backup_dir:
    description:
      - Absolute directory that receives backups, mirroring each path relative to O(dest). It is created
        with mode C(0700) when the first backup is made. It may not be inside O(dest) or a source.
      - An existing backup is never overwritten; a numeric suffix is added instead.
      - Defaults to C(/var/backups/etc_symlinks/<YYYYmmddTHHMMSS>) of the run.
    type: path
  prune:
    description:
      - Remove symlinks under O(dest) that point into one of the sources at a path that no longer exists
        (a file deleted from the checkout). No other link or file is ever removed.
      - Walks the whole of O(dest) without following symlinks or crossing into other filesystems.
    type: bool
    default: true
  copy:
    description:
      - Paths relative to the sources that are copied instead of linked. Shell globs are allowed as in
        O(conflict_overrides) (C(*) does not cross C(/), C(**) recurses), and a directory covers everything
        below it. When several entries match, the most specific one wins, as for O(conflict_overrides).
      - Each entry is a path string or a dictionary with V(path) and optional V(owner), V(group) (names or
        numeric ids), V(mode) (octal string such as V("0640")) and V(private).
      - V(private=true) lets O(state=capture) capture live files that are not world-readable (all of
        C(/etc/pve) is C(0640)); without it they are skipped with a warning. Captured files keep their live
        mode in the checkout. Nothing under C(priv/) of a C(pve) tree is ever captured, whatever the entry.
      - Owner, group and mode are applied when given; when omitted an updated copy keeps those of the file
        it replaces (best effort, C(/etc/pve) ignores them). Leave them out for C(/etc/pve).
      - A copy whose content differs from its source is overwritten; the old content is kept in
        O(backup_dir) unless the conflict mode for that path is V(replace).
    type: list
    elements: raw
    default: []
  secret_patterns:
    description:
      - Regular expressions (Python syntax, matched against the first MiB of the bytes of each file with
        C(re.MULTILINE)). A file to link or copy, or a live file to capture, that matches any of them is
        refused and the task fails naming the file.
      - Every source file is scanned on every run, so a secret committed later is still refused.
      - The default catches PEM, OpenSSH and PGP private keys, DER (PKCS#1, PKCS#8) and PKCS#12 keys, PuTTY
        keys, WireGuard C(PrivateKey) lines, ceph keyring keys, crypt hashes as in C(shadow) and htpasswd
        (md5, sha256, sha512, bcrypt, yescrypt, apr1, C({SHA})), AWS access key ids and secret keys, GitHub
        (classic and fine-grained), GitLab and Slack tokens; it does not match ordinary C(password =) lines. Set your own list
        to replace it (for instance the defaults plus a C(password) pattern), or V([]) to disable scanning.
    type: list
    elements: str
  exclude:
    description:
      - Shell globs of files and directories of the sources to skip. A glob without C(/) is matched against
        every path component (so V(*.swp) anywhere), one with C(/) against the relative path.
      - The default is V(.git), V(.gitignore), V(.gitattributes), V(.gitkeep), V(*.swp), V(*~), V(.#*) and
        V(README*). V(.git) is always excluded.
    type: list
    elements: str
  lock_timeout:
    description:
      - Seconds to wait for another run on the same O(dest) to finish.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    description: Computes and reports the full plan without touching anything.
  diff_mode:
    support: full
    description: One diff per changed path, describing the entry before and after (file content for copies and captures).
  platform:
    support: full
    platforms: posix
    description: Any POSIX host; copies into C(/etc/pve) need a Proxmox VE node.
notes:
  - Link targets are the absolute source paths as given in O(sources) (not resolved), so a checkout reached
    through a symlink keeps working when that symlink is switched.
  - A content change of a linked file is not a change for this module (the link already shows it); use the
    result of the git update to trigger handlers.
  - Runs as one process without per-file subprocesses; a no-op run over thousands of files takes well under
    a second of module time.
seealso:
  - module: ansible.builtin.file
  - module: ansible.builtin.git
'''

EXAMPLES = r'''
- name: Link the Open Food Facts configuration (common, then per-server) into /etc
  commons.infra.etc_symlinks:
    sources:
      - /opt/openfoodfacts-infrastructure/confs/common
      - /opt/openfoodfacts-infrastructure/confs/{{ inventory_hostname }}
    conflict: backup
    conflict_overrides:
      ssh/sshd_config: error
  register: etc_links

- name: Reload nginx when its links changed
  ansible.builtin.service:
    name: nginx
    state: reloaded
  when: etc_links.changed_paths | select('match', '/etc/nginx/') | list | length > 0

- name: Link the Open Library olsystem tree, refusing to touch hand-made files
  commons.infra.etc_symlinks:
    sources: [/opt/olsystem/etc]
    conflict: error

- name: Proxmox host, /etc/pve cannot hold symlinks, so copy it (through pmxcfs's qemu-server link too)
  commons.infra.etc_symlinks:
    sources: [/opt/openfoodfacts-infrastructure/confs/proxmox]
    copy:
      - pve
      - path: default/pve-ha-manager
        owner: root
        group: root
        mode: "0644"

# Every file of /etc/pve is 0640, hence private: true; priv/ is never captured.
- name: Capture the live /etc/pve files into the checkout before committing them
  commons.infra.etc_symlinks:
    sources: [/opt/openfoodfacts-infrastructure/confs/proxmox]
    state: capture
    copy:
      - path: pve/storage.cfg
        private: true
      - path: "pve/qemu-server/*.conf"
        private: true
'''

RETURN = r'''
created:
  description: Destination paths that did not exist and were linked.
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/sites-enabled/off.conf]
updated:
  description: Destination paths that existed and now link elsewhere (including resolved conflicts).
  returned: always
  type: list
  elements: str
removed:
  description: Stale links (into a source, whose source file is gone) that were removed.
  returned: always
  type: list
  elements: str
copied:
  description: Destination paths written or re-permissioned as copies.
  returned: always
  type: list
  elements: str
captured:
  description: Live destination paths whose content was written back into a source layer.
  returned: always
  type: list
  elements: str
captured_sources:
  description: Source files written by O(state=capture).
  returned: always
  type: list
  elements: str
backed_up:
  description: Destination paths whose previous entry was saved in O(backup_dir).
  returned: always
  type: list
  elements: str
backups:
  description: Destination path to backup path (planned paths in check mode).
  returned: always
  type: dict
  sample: {/etc/motd: /var/backups/etc_symlinks/20260101T000000/motd}
backup_dir:
  description: The backup directory used, or null when nothing was backed up.
  returned: always
  type: str
conflicts:
  description: Destination paths that existed and were not a link into the sources.
  returned: always
  type: list
  elements: str
kept:
  description: Destination paths that were already right.
  returned: always
  type: list
  elements: str
cleaned:
  description: Temporary entries of an interrupted run that were removed.
  returned: always
  type: list
  elements: str
dirs_created:
  description: Directories created under O(dest), parents first.
  returned: always
  type: list
  elements: str
changed_paths:
  description: Every destination path that changed, the union of RV(created), RV(updated), RV(removed) and RV(copied).
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/nginx.conf, /etc/pve/storage.cfg]
errors:
  description: Every problem found when the task fails before changing anything.
  returned: failure
  type: list
  elements: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.commons.infra.plugins.module_utils.etc_symlinks import (
    ApplyError,
    CONFLICT_MODES,
    EtcSymlinksError,
    Options,
    STATES,
    run,
)
from ansible_collections.commons.infra.plugins.module_utils.fs_rules import describe_error


def main():
    module = AnsibleModule(
        argument_spec=dict(
            sources=dict(type='list', elements='path', required=True),
            dest=dict(type='path', default='/etc'),
            state=dict(type='str', default='link', choices=list(STATES)),
            conflict=dict(type='str', default='backup', choices=list(CONFLICT_MODES)),
            conflict_overrides=dict(type='dict', default={}),
            backup_dir=dict(type='path'),
            prune=dict(type='bool', default=True),
            copy=dict(type='list', elements='raw', default=[]),
            secret_patterns=dict(type='list', elements='str', no_log=False),
            exclude=dict(type='list', elements='str'),
            lock_timeout=dict(type='int', default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        opts = Options(sources=p['sources'], dest=p['dest'], state=p['state'], conflict=p['conflict'],
                       conflict_overrides=p['conflict_overrides'], backup_dir=p['backup_dir'],
                       prune=p['prune'], copy=p['copy'], secret_patterns=p['secret_patterns'],
                       exclude=p['exclude'], lock_timeout=p['lock_timeout'])
        result = run(opts, check_mode=module.check_mode, diff=module._diff)
    except EtcSymlinksError as e:
        module.fail_json(msg=str(e), errors=e.errors)
    except ApplyError as e:
        module.fail_json(msg=str(e), changed=True, **e.result)
    except Exception as e:  # pylint: disable=broad-except
        # Last resort: a clean failure naming the path, the traceback kept for -vvv.
        module.fail_json(msg='etc_symlinks failed: %s' % describe_error(e), exception=traceback.format_exc())
    for warning in result.pop('warnings'):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
