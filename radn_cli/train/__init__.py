"""Training-side tools for RADN weights (synthetic KADID-10k-style distortions and their data).

Nothing here is imported by the CLI at start-up; import the submodules you need, e.g.
``from radn_cli.train.distortions import distort, DISTORTIONS``.
"""
