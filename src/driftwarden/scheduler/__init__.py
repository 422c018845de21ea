"""The contract drift scheduler: policy, triggers, summaries, anomaly alerts, watchdog."""
