"""Outbound LDAP to the referral list's peers: the pooled client, its circuit
breaker, the DN mapping and the answer cache (`directory.overlays.chaining`
decides when they are asked)."""
