"""The delivery engine: building, signing and sending webhooks (through libcurl), queues and their limits, retries,
the request log and health buffers, broken detection and the owners' emails about it, and housekeeping.

May import ``webapp.core`` and ``webapp.models``. Two modules are entry points rather than engine: ``tasks`` and
``intake`` hold the jobs RQ runs by name (their dotted paths are stored in queued jobs, so they stay here), and
like views they may call into ``webapp.alerts``. Nothing else here imports a family.
"""
