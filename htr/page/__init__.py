"""Pages: the layout model (layout.py), PAGE XML and ALTO (pagexml.py, alto.py), line crops,
synthetic pages and the line segmenter."""
