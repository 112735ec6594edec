"""The embedded mini benchmark ``mini-qa``: Q&A on degraded public-domain portraits.

``data/sources/`` holds the photos and their provenance (licence, face box); ``data/qa/`` the
generated items and images, rebuilt by ``python -m fiqabench.tasks.mini.generate_qa``.
"""
