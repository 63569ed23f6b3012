"""The host driver: runs slices (chunks of logging windows) of the pure training function for
many runs at once, with progress, metric rows, Orbax checkpoints, exact resume and run
directories. ``training.train`` is ``jaxrl.train``; ``run.train_run`` the checkpointed run that
``jaxrl train`` and sweeps use."""
