"""Every read and write of the outside world: AWS clients, S3, Delta tables, DynamoDB, Spark sessions."""
