// Placeholder until the file sink lands.
