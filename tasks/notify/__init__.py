"""The notifier: durable consumers that tell operators about orders and stock-outs (LINE, Discord,
signed webhooks). Each target reads the history in a consumer group of its own, so a target that
is down delays only itself."""
