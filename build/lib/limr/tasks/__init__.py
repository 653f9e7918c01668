"""Task definitions: seeded synthetic math problems (`synthetic`) for CPU-sized runs."""
