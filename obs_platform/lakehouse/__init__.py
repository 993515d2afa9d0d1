"""The Hudi table: its spec, the only home of ``hoodie.*`` options, and the Spark session factory."""
