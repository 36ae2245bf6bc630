"""ACME (RFC 8555): certbot and other ACME clients get, renew and revoke
TLS certificates from the CA over the https service, under `/acme/`."""
