"""Call-back requests: the store and its outbox, the webhook and e-mail deliveries, the staff command."""
