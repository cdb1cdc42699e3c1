"""The Textual screens. The engine never imports this package; this package never does git,
subprocesses or file formats itself (that is in `autoresearch_tui.engine`)."""
