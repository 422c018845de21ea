"""System-wide operator surfaces: the audit log and health."""
