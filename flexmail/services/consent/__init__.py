"""Double opt-in: signup requests, flood limits, the confirmation mail, list branding."""
