"""Storage: the SQLite store of blocks, commits, tx index and application state.

The only package that touches the database. :class:`Store` is the I/O face;
:func:`alloranet.state.chainstore.load_app_state` and ``save_block_result`` adapt it to the
chain's types.
"""
