"""Orgs, API keys and roles."""
