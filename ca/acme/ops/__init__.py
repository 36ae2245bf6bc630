"""The ACME operations, one module per resource kind (RFC 8555 §7)."""
