"""Matching's use cases (``services``) and the unit of work they run in (``unit_of_work``)."""
