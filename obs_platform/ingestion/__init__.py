"""Pub/Sub -> Hudi: the micro-batch reader, decoding to rows or dead letters, and the streaming job."""
