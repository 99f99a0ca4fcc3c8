"""Matching's pure domain: no I/O, no transport models.

* ``signals``    -- :class:`SignalFacts`, what matching knows of one signal (pseudonymous).
* ``linking``    -- persons and households from match tokens (address links expire);
  deterministic, incremental.
* ``cases``      -- case lifecycle, repeats, DDAS statuses and end results.
* ``triage``     -- policy models (per municipality) and the outreach decision.
* ``routing``    -- municipality and team(s) for a case.
* ``ddas_export``-- one DDAS v0.9 delivery for a municipality and period.
* ``monitoring`` -- evaluation figures per municipality and month.
* ``matcher``    -- the flow over a batch's slice of the state; its ``take_*`` operations
  return the outcomes to tell.
* ``outcomes``   -- what happened (case opened/changed/closed, decision changed, creditor
  status changed, stale revision dropped, ...), for the service layer to turn into events.
"""
