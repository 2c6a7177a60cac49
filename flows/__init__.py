"""khaosat's pipeline: settings and registry, one package per step, the Prefect flows, the CLI."""
