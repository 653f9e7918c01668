"""Hooks that let other trainers write limr runs while they train (`limr.integrations.trl`)."""
