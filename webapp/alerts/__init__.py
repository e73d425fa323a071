"""Alerts: what produces them and what they say. Ingestion (Sentry's protocol), the event store and grouping, issues
and their workflow (resolve, ignore, reopen, history), issue search, issue alert rules, metric alerts and incidents,
and the ``serializers`` that give each webhook's ``data`` Sentry's shapes.

May import ``webapp.dispatch`` (to hand alerts to the engine), ``webapp.core`` and ``webapp.models``; never views or
another family.
"""
