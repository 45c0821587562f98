"""wiregate: one server, two wire protocols (AMQP 0-9-1 and Kafka), one core engine."""

__version__ = "0.1.0"
