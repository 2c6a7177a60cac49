"""The Prefect flows and what makes them fast: context, tasks, batches, pools, processes."""
