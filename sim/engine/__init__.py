"""Loading (YAML with line numbers, overrides, every domain check), one replication, the recorder,
executors (local processes, Dask) and the results folder. Imports config, workloads, backends, core."""
