"""Getting a message to an SMTP server: MIME building, the connection pool, error mapping."""
