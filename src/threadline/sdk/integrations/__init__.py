"""Trace context and journey baggage across every boundary a Python service has.

One module per boundary; each imports its library only when used, so a service
installs only the clients it needs (``pip install threadline[integrations]`` for all):

==================  ==============================================================
module              boundary
==================  ==============================================================
``codec``           broker headers of every shape ⇄ a W3C carrier
``messaging``       PRODUCER / CONSUMER spans with the messaging conventions
``http_clients``    requests, httpx, aiohttp, urllib3 (stock instrumentations)
``http_servers``    Django, Starlette, aiohttp, any WSGI/ASGI app
``server_spans``    the HTTP server span of a WSGI request (stock conventions)
``flask_server``    Flask server spans, Threadline's own (``instrument(app)``)
``django_server``   Django server spans, Threadline's own (``ServerSpanMiddleware``)
``rpc``             gRPC client and server (stock instrumentation)
``celery``          Celery tasks (stock instrumentation, plus journey and attempt)
``rabbitmq``        pika and aio-pika
``redis_streams``   Redis Streams with redis-py
``nats``            NATS core and JetStream with nats-py
``mqtt``            MQTT v5 user properties with paho-mqtt
``kafka``           Kafka record headers (any client that takes header pairs)
==================  ==============================================================
"""
