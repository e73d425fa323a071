"""Accounts: people, organisations and their members, invitations, passwords, API tokens, login throttling, the
audit log's search, and the account work handed to workers (``jobs``).

May import ``webapp.dispatch`` (to send mail), ``webapp.core`` and ``webapp.models``; never views or another family.
"""
