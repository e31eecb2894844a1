"""Test plans get everything from the bench plugin's fixtures (fixtures/plugin.py); nothing to add here."""
