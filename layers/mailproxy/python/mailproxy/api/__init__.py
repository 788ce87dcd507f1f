"""The HTTP face of the proxy: request bodies, response shapes, who may call what, and the
use cases the api Lambda's routes call. The domain and the services know nothing of it."""
