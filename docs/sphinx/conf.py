# Sphinx configuration of the commons.infra docs site (`make docs`, scripts/docs.sh).
# antsibull-docs writes the pages from the modules', filters' and roles' own
# documentation; this file is copied beside them. Built offline: no intersphinx
# (it would download inventories), so references leave this collection only as URLs.
project = 'commons.infra'
copyright = 'commons.infra maintainers, GPL-3.0-or-later'
title = 'commons.infra collection documentation'
html_short_title = 'commons.infra'

extensions = ['sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
# Every reference must resolve: with -W a dangling one fails the build.
nitpicky = True

# References out of the collection resolve through an inventory that
# docs/sphinx/external_refs.py writes offline (links to docs.ansible.com).
extensions.append('sphinx.ext.intersphinx')
intersphinx_mapping = {'ansible': ('https://docs.ansible.com/ansible/latest/', 'external.inv')}
intersphinx_disabled_reftypes = []
