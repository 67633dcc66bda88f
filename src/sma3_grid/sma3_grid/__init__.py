"""Network model of MV distribution grids.

Importer and exporter of the network description contract (:mod:`sma3_grid.io`), the oriented
radial model (:mod:`sma3_grid.model`), topology queries (:mod:`sma3_grid.topology`), benchmark
networks (:mod:`sma3_grid.networks`) and drawings (``sma3-grid plot``).
"""
