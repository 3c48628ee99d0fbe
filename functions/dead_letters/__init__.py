"""Lambda function: dead_letters (thin Powertools handler; logic in ccc_common)."""
