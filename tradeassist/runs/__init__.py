"""Scheduled task runs, the orchestration: exactly-once slot claims (``claims``), the papermill
runner (``runner``: the kernel in ``kernel``, artefacts in ``artefacts``, the recording
transaction in ``recording``), what task notebooks call (``notebook_api``) and the work of
each task kind (``kinds``).

The rows of runs and claims are read and written by the services (``services.run_records``,
``services.run_history``); schedules are ``services.schedule`` and the kinds' settings
``services.task_kinds``. This package issues no SQL of its own, and nothing is imported here.
"""
