"""Rehearsal tools: simulated listeners and join storms against a Pnyx deployment.

A client of the public protocol only (import-linter keeps node code out):

* ``command`` — the ``pnyx loadtest listeners|joinstorm`` CLI, bounds, the JSON keys;
* ``http`` — a lean HTTP/1.1 keep-alive client (asyncio Protocol + httptools);
* ``playlist``, ``playhead`` — pure LL-HLS reading and the virtual player's stall model;
* ``listeners`` — one process's fleet of simulated listeners;
* ``runner`` — one or K worker processes, merged per-second progress, the report;
* ``joinstorm`` — open-loop join arrivals with a scripted stage;
* ``stats``, ``summary``, ``target`` — mergeable figures, human text, URLs/limits/set-up.
"""
