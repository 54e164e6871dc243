"""Scheduled task runs: schedules (``schedule``), exactly-once slot claims (``claims``), the
papermill runner and its artefacts (``runner``), what task notebooks call (``notebook_api``),
the work and settings of each task kind (``kinds``), and past runs with replay (``history``).

Nothing is imported here: ``tradeassist.services.tasks`` imports ``schedule`` and ``kinds``,
and the runner imports the services, so the package itself stays import-free.
"""
