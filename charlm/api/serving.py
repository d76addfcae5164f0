"""What a server shares between its users: one :class:`Batcher` per served run, generating
the rows of every request that has joined it, and the :class:`Job` of one request
(:mod:`charlm.use.batcher`). The server face reaches generation only through here."""

from __future__ import annotations

from ..use.batcher import Batcher, Job

__all__ = ["Batcher", "Job"]
