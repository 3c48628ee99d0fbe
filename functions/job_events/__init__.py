"""Lambda function: job_events (thin Powertools handler; logic in ccc_common)."""
