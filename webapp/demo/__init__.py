"""The demo (``python -m webapp.demo``): sets up Hookline for a newcomer and runs it with a mail catcher (``mail``), a
webhook receiver (``receiver``) and, with ``--story``, a receiver that breaks (``story``).

Stands on top, like the views: may import any part of Hookline; nothing imports it.
"""
