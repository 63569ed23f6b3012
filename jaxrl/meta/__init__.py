"""Meta-learning by evolution: one maximising interface over evosax's strategies (``es``), a
generation as one compiled program over population x tasks x seeds (``engine``), and the host
driver with checkpoints, resume, meta.csv and fitness.png (``run``; its command is ``jaxrl.cli.meta``)."""
