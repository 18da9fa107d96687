"""The HTTP layer: JSON API, Prometheus ``/metrics``, health probes and the dashboard.

``routes`` defines every endpoint once; ``app`` serves them as a Starlette ASGI app (mountable in
FastAPI/Starlette), ``wsgi`` as a Flask blueprint, ``server`` runs the ASGI app with uvicorn in a
thread for ``tqrun``. ``state.HttpState`` is what the composition root hands in.
"""
