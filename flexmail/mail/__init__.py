"""Building RFC 5322 messages and handing them to a transport."""
