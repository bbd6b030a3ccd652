"""Wire codec for BGP messages and EVPN routes (RFC 4271, RFC 4760, RFC 7432, RFC 9136, RFC 8365)."""
