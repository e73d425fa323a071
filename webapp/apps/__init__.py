"""Apps: internal apps (register, test, disable, re-enable, rotate secrets), projects and their client keys (DSNs).

May import ``webapp.dispatch``, ``webapp.core`` and ``webapp.models``; never views or another family.
"""
