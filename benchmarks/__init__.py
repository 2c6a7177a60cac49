"""Benchmarks of khaosat: see benchmarks/README.md."""
