"""Pub/Sub clients. On the local profile they reach the emulator through PUBSUB_EMULATOR_HOST."""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings

from obs_platform.settings import Settings

log = logging.getLogger(__name__)


def _point_at_emulator(settings: Settings) -> None:
    host = settings.pubsub_emulator_host
    if host:
        os.environ["PUBSUB_EMULATOR_HOST"] = host


def topic_path(settings: Settings) -> str:
    return pubsub_v1.PublisherClient.topic_path(settings.gcp_project, settings.topic)


def subscription_path(settings: Settings) -> str:
    return pubsub_v1.SubscriberClient.subscription_path(settings.gcp_project, settings.subscription)


def publisher(settings: Settings, max_latency_s: float = 0.01, max_messages: int = 1000) -> pubsub_v1.PublisherClient:
    """A batching publisher (1,000 messages or 10 ms, whichever comes first, by default)."""
    _point_at_emulator(settings)
    return pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=max_messages, max_latency=max_latency_s)
    )


def subscriber(settings: Settings) -> pubsub_v1.SubscriberClient:
    _point_at_emulator(settings)
    return pubsub_v1.SubscriberClient()


def ensure_topic_and_subscription(settings: Settings) -> None:
    """Create the topic and the ingestion subscription if missing (idempotent)."""
    pub = publisher(settings)
    sub = subscriber(settings)
    with _closing(sub):
        try:
            pub.create_topic(request={"name": topic_path(settings)})
            log.info("created topic %s", topic_path(settings))
        except gexc.AlreadyExists:
            pass
        try:
            sub.create_subscription(
                request={
                    "name": subscription_path(settings),
                    "topic": topic_path(settings),
                    "ack_deadline_seconds": settings.ack_deadline_seconds,
                }
            )
            log.info("created subscription %s", subscription_path(settings))
        except gexc.AlreadyExists:
            pass


def delete_subscription(settings: Settings) -> None:
    sub = subscriber(settings)
    with _closing(sub):
        try:
            sub.delete_subscription(request={"subscription": subscription_path(settings)})
        except gexc.NotFound:
            pass


@contextmanager
def _closing(client: pubsub_v1.SubscriberClient):
    try:
        yield client
    finally:
        client.close()
