"""`driftwarden worker`: the outbox drain loop (`runner`) and its periodic jobs (`jobs`)."""
