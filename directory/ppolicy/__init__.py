"""Password policy (a subset of draft-behera-ldap-password-policy-10): the
settings, the checks and the state kept in entries; `directory.overlays.ppolicy`
applies them to operations."""
