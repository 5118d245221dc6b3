"""The setup web page: server-rendered HTML where a person adds a missing credential.

``GET /setup/<token>`` (a signed, short-lived link from a ``setup_requirements`` response)
shows what a block needs and a form per credential type; see :mod:`blockpilot.web.setup`.
"""
