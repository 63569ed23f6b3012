"""Sweeps: grids and random searches of hyperparameters x seeds, one compiled program per
structural group (``plan``, ``run``), their results and plots (``result``, ``plots``); the
``jaxrl sweep`` command is ``jaxrl.cli.sweep``."""
