"""The built-in sources, one module each; importing this package registers them.

A new source is a module of its own that ends with one ``dsc.registry.register(Source(...))``
call; import it (here, for a built-in one, or from your own code) before naming it in a job.
"""

from dsc.catalog import gaussian, mnist  # noqa: F401
