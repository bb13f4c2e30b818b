"""Mail and webhooks that must go out once: the outbox, our own addresses, webhook deliveries."""
