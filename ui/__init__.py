"""The Gradio pages of the app, one module per tab; ``app.py`` assembles them.

Each ``build_*_tab`` function lays out its tab's components and wires them to handlers; the
handlers call the ``rps`` library and return named tuples, which Gradio takes as the outputs
in order and tests read by name.
"""
