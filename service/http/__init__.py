"""The HTTP room: routes kept thin over the inference core, request parsing, wire models
(``schemas``), dependencies, middleware, connection timeouts, auth, and the one place where
domain errors become status codes (``errors``)."""
