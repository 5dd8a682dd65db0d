"""The on-site agent: configuration, scheduling, rules, MQTT, spool and the CLI."""
