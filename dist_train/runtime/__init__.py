"""Launch and process group: world discovery (torchrun, Slurm, MPI), process-group set-up and collectives, stop signals, start-up agreement between ranks."""
