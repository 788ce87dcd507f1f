"""Real parts for the tests: SMTP servers on 127.0.0.1 and helpers around the handlers."""
