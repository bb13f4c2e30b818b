"""The proof: the consent ledger, its signed heads, exports, certificates, retention and erasure."""
