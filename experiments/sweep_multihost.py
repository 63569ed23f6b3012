"""A sweep over the devices of several hosts: start this script once per host (process).

``jax.distributed.initialize`` joins the processes; ``jax.devices()`` then lists every device of
every host, ``jaxrl.sweep`` splits the run axis over all of them (each process computes the runs on
its own devices, nothing is exchanged during training), every process gathers the full results at
each chunk, and process 0 writes the run directory.

On SLURM, Open MPI or a TPU pod the cluster is detected, so no arguments are needed:

    srun --nodes 4 --ntasks-per-node 1 python experiments/sweep_multihost.py --out runs/multihost

Elsewhere, name the coordinator (process 0's host and a free port) and each process's index:

    python experiments/sweep_multihost.py --coordinator host0:12345 --num-processes 2 --process-id 0   # on host0
    python experiments/sweep_multihost.py --coordinator host0:12345 --num-processes 2 --process-id 1   # on host1

To try it on one machine, give each process some CPU devices and CPU collectives:

    for i in 0 1; do XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/sweep_multihost.py \\
        --coordinator localhost:12345 --num-processes 2 --process-id $i --cpu-collectives gloo \\
        --total-steps 10240 --out /tmp/multihost & done; wait
"""

from __future__ import annotations

import argparse

import jax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", default=None, help="host:port of process 0 (default: detected)")
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--cpu-collectives", default=None, help="gloo or mpi, for CPU-only processes")
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", default="runs/multihost-sweep")
    args = parser.parse_args()

    if args.cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", args.cpu_collectives)
    # Before anything touches a device: the backends must start knowing about the other hosts.
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)

    import jaxrl  # noqa: E402  (after initialize, see above)

    result = jaxrl.sweep(
        "ppo",
        "CartPole-v1",
        grid={"lr": [1e-4, 3e-4, 1e-3], "ent_coef": [0.0, 0.01]},
        seeds=args.seeds,
        overrides={"total_steps": args.total_steps, "num_envs": 4},
    )
    print(f"process {jax.process_index()} of {jax.process_count()}, {result.num_devices} devices in all: "
          f"{len(result.results)} rows; {result.summary_line()}", flush=True)
    result.write(args.out)  # only process 0 writes


if __name__ == "__main__":
    main()
