"""SQL endpoint: metastore PostgreSQL, Hive sync, Spark Thrift Server."""
