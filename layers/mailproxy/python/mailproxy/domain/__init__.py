"""The pure domain core: no I/O, no environment, no clock (time is passed in)."""
