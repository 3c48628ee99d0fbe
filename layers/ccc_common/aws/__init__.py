"""AWS adapters behind the domain's ports: the DynamoDB jobs store and the SQS / Auto Scaling
fleet gauges. They receive boto3 clients; they never create them."""
