"""AWS adapters behind the domain's ports (``ccc_common.domain.job_store``, ``fleet_ports``,
``storage_ports``): DynamoDB, SQS, Auto Scaling, Lambda and S3. They receive boto3 clients; they
never create them, so the layer itself imports no AWS SDK."""
