"""List or replay ingestion's dead letters (the store itself is ``obs_platform.lakehouse.dead_letters``).

    python -m obs_platform.ingestion.dead_letters list
    python -m obs_platform.ingestion.dead_letters replay --reason unknown_schema
"""

from __future__ import annotations

import logging

from obs_platform.lakehouse.dead_letters import DeadLetterStore

__all__ = ["DeadLetterStore", "main"]


def main(argv: list[str] | None = None) -> None:
    import argparse

    from obs_platform.bus.client import publisher, topic_path
    from obs_platform.settings import get_settings

    parser = argparse.ArgumentParser(description="List or replay ingestion's dead letters.")
    parser.add_argument("command", choices=["list", "replay"])
    parser.add_argument("--reason", help="only dead letters with this reason (e.g. unknown_schema)")
    parser.add_argument("--id", action="append", dest="ids", help="only this messageId (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = get_settings()
    store = DeadLetterStore(settings.dead_letter_uri)
    if args.command == "list":
        for row in store.pending().to_pylist():
            print(f"{row['receivedAt']:%Y-%m-%d %H:%M:%S}  {row['messageId']:>20}  {row['reason']:<15} {row['detail']}")  # noqa: T201 - CLI output
        print(f"{store.pending().num_rows} pending; by reason: {store.count_by_reason()}")  # noqa: T201
        return
    pub = publisher(settings)
    topic = topic_path(settings)
    count = store.replay(lambda data, attrs: pub.publish(topic, data, **attrs), args.reason,
                         set(args.ids) if args.ids else None)
    print(f"replayed {count} dead letters to {topic}")  # noqa: T201


if __name__ == "__main__":
    main()
