"""What the connector talks to in the tests, other than the real scim2-server.

- `ss12000_server`: a fake SS 12000:2020 server (validated against the standard's OpenAPI
  document), and `ss12000_school`, a small school to fill it with;
- `faultproxy`: a proxy in front of the real SCIM server that spoils a seeded share of the
  exchanges (the network is the only thing faked on the vendor's side);
- `slapd`: a real OpenLDAP slapd, run from a folder of its own.
"""
