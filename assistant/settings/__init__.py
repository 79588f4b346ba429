"""The clinic's configuration (clinic.yml) and the environment's (SMTP), validated at start-up."""
