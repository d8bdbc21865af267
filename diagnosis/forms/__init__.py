"""Forms of the diagnosis pages, one module per sub-domain."""
