"""ACME validation tests: the validator runs in the test's asyncio reactor against
real servers on loopback ports of their own (servers.py): twisted.web for
http-01, pyOpenSSL behind Twisted's TLS for tls-alpn-01, an in-process
twisted.names authority for dns-01. Nothing of the network is mocked."""
