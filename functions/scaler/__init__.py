"""Lambda function: scaler (thin Powertools handler; logic in ccc_common)."""
