"""Lambda function: jobs_api (thin Powertools handler; logic in ccc_common)."""
