"""Network model of MV distribution grids: importer of the network description contract, radial orientation, topology queries, benchmark networks and drawings."""
