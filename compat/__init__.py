"""Differential compat oracle: the same pika scenarios against RabbitMQ and wiregate."""
