"""Custom actions, one module per job; the action server loads this package."""
