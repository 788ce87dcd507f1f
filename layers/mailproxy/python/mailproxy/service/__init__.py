"""Use cases: each one takes its collaborators (store, queues, clock) as arguments."""
