"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident (``dedup_key``)."""
