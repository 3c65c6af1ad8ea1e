"""Live pipeline: ZeroMQ-linked stages (producer, windower, identifier), gallery, terminal dashboard."""
