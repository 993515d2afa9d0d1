"""The message bus: Pub/Sub clients and the local emulator (gcloud's, or the Go pstest fallback)."""
