"""The warehouse: tables, migrations, loads, the run ledger, marts and the alert store."""
