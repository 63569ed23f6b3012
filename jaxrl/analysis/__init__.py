"""After training: deterministic evaluation, ``load_policy`` and rendering (``evaluation``),
statistics (``stats``: IQM, bootstrap intervals) and plots (``plotting``)."""
