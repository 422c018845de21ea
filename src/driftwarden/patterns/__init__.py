"""Issue patterns: tracked problems with a lifecycle."""
