"""The built-in sources, one module each; importing this package registers them.

A new source is a module of its own that ends with one ``dsc.registry.register(Source(...))``
call; name it with ``--import`` on the command line or ``imports=[...]`` in an evaluation job,
or declare it as an entry point of the group ``dsc.sources`` (docs/sources.md). Its optional
file hooks can read files with :mod:`dsc.catalog.files`, as the built-in ones do.
"""

from dsc.catalog import gaussian, images  # noqa: F401
