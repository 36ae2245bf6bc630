"""Replication (RFC 4533 syncrepl): certdir as a consumer of a provider."""
