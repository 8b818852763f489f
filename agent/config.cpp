// Placeholder until the config loader lands.
