"""The service centre's side: turns agents' MQTT events into help-desk tickets."""
