"""The pure domain core: no I/O, no environment, no clock (time is passed in).

Its pydantic models are declared with `defer_build=True`: a model's validator is built when it
is first used, so a Lambda builds only the models its requests need, never at import
(tests/integration/functions/test_handler_import.py)."""
