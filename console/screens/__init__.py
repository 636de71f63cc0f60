"""The read side of each screen: what a list or page shows, loaded and decorated.

One module per screen area. Every list is a ``ListScreen`` declaration (``lists.py``,
the list contract) paged by ``keyset.py``; detail pages are loaders that read each
database once and hand plain data to their templates. Views (console/views/) parse the
request and call these; workflows (console/workflows/) do the writing.
"""
