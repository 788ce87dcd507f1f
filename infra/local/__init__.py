"""Local mode: the whole proxy on one machine, over an embedded AWS emulation (moto)."""
