"""Storage: the schema, opening a database, and every write and read of the tables."""
