"""The platform every part stands on: settings (``config``), Redis key names (``keys``), the clock, the Redis and
database handles (``redis_store``, ``extensions``), the outbox that queues jobs after a commit, outages and
retries, request protections and input checks, the address guard (``netguard``), the audit record, caching,
metrics, and the dashboard's shared helpers (templating, charts, forms, names).

May import ``webapp.models`` only. ``extensions`` and ``clock`` import nothing of Hookline's: models stand on them.
"""
