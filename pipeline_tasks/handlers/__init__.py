"""Lambda entrypoints: parse the event, build Settings, call one function, return a JSON-serialisable dict.

Each module has ``handler(event, context)`` for AWS and ``handle(event, settings)``, which
the local stack calls with the Settings of the function's environment.
"""
