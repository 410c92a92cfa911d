"""The HTTP side: marketplace webhooks in, Server-Sent Events out."""
