"""The shared package of the mail proxy: domain core, stores, delivery and services."""
